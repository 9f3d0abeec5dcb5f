//! Forward-only schema migrations, embedded from the workspace's `migrations/` folder.
//!
//! Each file runs once, in name order, in its own transaction, and is recorded with a checksum in
//! `schema_migrations`. An advisory lock serialises concurrent starts of several servers, and a
//! migration edited after it was applied is refused rather than silently skipped.

use tokio_postgres::Client;

use super::StoreError;

include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

/// Arbitrary, fixed key of the advisory lock held while migrating ("hazina" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x6861_7a69_6e61;

/// Applies every migration not yet recorded in the database; returns the names it applied.
///
/// # Errors
///
/// [`StoreError::MigrationEdited`] when an applied migration's text has changed since, and
/// [`StoreError::Db`] when the database refuses a statement.
pub async fn migrate(client: &mut Client) -> Result<Vec<String>, StoreError> {
    client.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK_KEY]).await?;
    let result = apply_pending(client).await;
    // Unlock even when a migration failed, so that the connection can be reused.
    client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK_KEY]).await?;
    result
}

async fn apply_pending(client: &mut Client) -> Result<Vec<String>, StoreError> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 name text PRIMARY KEY,
                 checksum text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now()
             )",
        )
        .await?;
    let rows = client.query("SELECT name, checksum FROM schema_migrations", &[]).await?;
    let applied: std::collections::HashMap<String, String> =
        rows.iter().map(|row| (row.get(0), row.get(1))).collect();
    let mut done = Vec::new();
    for (name, sql) in MIGRATIONS {
        let checksum = checksum(sql);
        if let Some(recorded) = applied.get(*name) {
            if *recorded != checksum {
                return Err(StoreError::MigrationEdited { name: (*name).to_owned() });
            }
            continue;
        }
        let tx = client.transaction().await?;
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2)",
            &[name, &checksum],
        )
        .await?;
        tx.commit().await?;
        tracing::info!(migration = name, "applied migration");
        done.push((*name).to_owned());
    }
    Ok(done)
}

/// A stable fingerprint of a migration's text (FNV-1a, 64 bits): it detects edits, it is not a
/// security measure.
fn checksum(sql: &str) -> String {
    let hash = sql.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{hash:016x}")
}

/// A fingerprint of the whole migration set, for naming template databases in tests.
pub fn fingerprint() -> String {
    let mut all = String::new();
    for (name, sql) in MIGRATIONS {
        all.push_str(name);
        all.push('\n');
        all.push_str(sql);
    }
    checksum(&all)
}
