//! Limits that keep any input from making evaluation hang or exhaust memory.

/// Bounds on what one evaluation may read and produce. Each has a diagnostic naming it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest environment document, in bytes.
    pub max_document_bytes: usize,
    /// Deepest nesting of sequences and mappings in a document.
    pub max_depth: usize,
    /// Most imports one environment may declare (explicit and implicit together).
    pub max_imports: usize,
    /// Most environments one evaluation may load, the root included.
    pub max_environments: usize,
    /// Most evaluation work, counted in values produced and bytes built.
    pub max_steps: u64,
    /// Longest chain of references evaluated one inside another.
    pub max_reference_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_document_bytes: 1 << 20,
            max_depth: 64,
            max_imports: 100,
            max_environments: 500,
            max_steps: 400_000,
            max_reference_depth: 2_000,
        }
    }
}
