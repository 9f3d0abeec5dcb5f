//! The PostgreSQL store: the only module that knows SQL.

mod migrate;

pub use migrate::{fingerprint as migrations_fingerprint, migrate};

/// A failure of the store's infrastructure (never a business rejection: those are values).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A migration already applied to this database has been edited since.
    #[error("migration {name} was edited after it was applied; migrations are forward-only")]
    MigrationEdited { name: String },
    /// The database refused or failed a statement.
    #[error("database error")]
    Db(#[from] tokio_postgres::Error),
    /// No connection could be taken from the pool.
    #[error("database pool error")]
    Pool(#[from] deadpool_postgres::PoolError),
}
