//! End-to-end tests of the server: each starts the real app on 127.0.0.1 port 0 with a fresh
//! database and talks HTTP to it.

mod admin;
mod audit;
mod environments;
mod errors;
mod helpers;
mod oidc;
mod openapi;
mod permissions;
mod ratelimit;
mod sdk;
