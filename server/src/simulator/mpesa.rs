//! Placeholder: the mpesa simulator.

/// The mpesa simulator's state and scripts.
#[derive(Clone, Debug, Default)]
pub struct Simulator;

impl Simulator {
    /// The simulator's routes (mounted under `/simulator/mpesa`).
    pub fn router(&self) -> axum::Router {
        axum::Router::new()
    }
}
