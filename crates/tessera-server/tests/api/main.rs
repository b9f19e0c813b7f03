//! End-to-end tests of the server: each starts the real app on 127.0.0.1 port 0 with a fresh
//! database and talks HTTP to it.

mod admin;
mod audit;
mod config;
mod environments;
mod errors;
mod exchange;
mod helpers;
mod observability;
mod oidc;
mod openapi;
mod permissions;
mod ratelimit;
mod sdk;
mod tls;
