//! Placeholder: the momo simulator.

/// The momo simulator's state and scripts.
#[derive(Clone, Debug, Default)]
pub struct Simulator;

impl Simulator {
    /// The simulator's routes (mounted under `/simulator/momo`).
    pub fn router(&self) -> axum::Router {
        axum::Router::new()
    }
}
