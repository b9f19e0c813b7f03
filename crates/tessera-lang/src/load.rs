//! Gathering every environment an evaluation needs before it starts.
//!
//! The server knows the whole import closure before evaluating, so it can check Open on
//! every environment involved first and fetch them concurrently.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use crate::eval::{Parsed, Source};
use crate::limits::Limits;

/// Environments loaded ahead of evaluation, by name.
#[derive(Debug, Default)]
pub struct Loaded {
    envs: HashMap<String, Result<Arc<Parsed>, String>>,
    order: Vec<String>,
}

impl Loaded {
    /// Every environment named, root first, in discovery order (missing ones included).
    pub fn names(&self) -> &[String] {
        &self.order
    }

    /// The environments that exist and were read.
    pub fn found(&self) -> impl Iterator<Item = &str> {
        self.order
            .iter()
            .filter(|n| matches!(self.envs.get(*n), Some(Ok(_))))
            .map(String::as_str)
    }

    /// Adds an environment's source (or why it is missing).
    pub fn insert(&mut self, name: &str, source: Result<Arc<Parsed>, String>) {
        if self.envs.insert(name.to_owned(), source).is_none() {
            self.order.push(name.to_owned());
        }
    }
}

impl Source for Loaded {
    fn load(&self, name: &str) -> Result<Arc<Parsed>, String> {
        match self.envs.get(name) {
            Some(r) => r.clone(),
            None => Err(format!("environment {name:?} not found")),
        }
    }
}

/// Loads `root` and, breadth first, everything it imports. `fetch` returns the YAML of an
/// environment, or a message saying why it cannot (shown at the import that names it).
pub async fn load_closure<F, Fut>(root: &str, limits: &Limits, fetch: F) -> Loaded
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<String, String>>,
{
    load_closure_parsed(root, limits, |name: String| {
        let text = fetch(name.clone());
        async move {
            text.await
                .map(|src| Arc::new(Parsed::new(&name, &src, limits)))
        }
    })
    .await
}

/// [`load_closure`] for callers that parse (or keep parsed) environments themselves, e.g. a
/// cache of parsed revisions: `fetch` returns the environment already parsed under `name`.
pub async fn load_closure_parsed<F, Fut>(root: &str, limits: &Limits, fetch: F) -> Loaded
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<Arc<Parsed>, String>>,
{
    let mut loaded = Loaded::default();
    let mut frontier = vec![root.to_owned()];
    while !frontier.is_empty() && loaded.order.len() < limits.max_environments {
        let batch: Vec<String> = std::mem::take(&mut frontier);
        let fetched = futures::future::join_all(batch.iter().map(|n| fetch(n.clone()))).await;
        for (name, r) in batch.into_iter().zip(fetched) {
            if loaded.envs.contains_key(&name) {
                continue;
            }
            let parsed = r;
            if let Ok(p) = &parsed {
                if let Some(decl) = &p.decl {
                    for dep in decl.dependencies() {
                        if !loaded.envs.contains_key(&dep) && !frontier.contains(&dep) {
                            frontier.push(dep);
                        }
                    }
                }
            }
            loaded.insert(&name, parsed);
        }
    }
    loaded
}
