//! The test harness itself: fresh databases are distinct, migrated, and gone after drop.

use hazina_tests::{admin_config, empty_db, fresh_db};

async fn database_exists(name: &str) -> anyhow::Result<bool> {
    let admin = hazina_server::db::connect(&admin_config().await?).await?;
    let row = admin.query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name]).await?;
    Ok(row.is_some())
}

async fn has_table(client: &tokio_postgres::Client, table: &str) -> anyhow::Result<bool> {
    let row = client.query_one("SELECT to_regclass($1) IS NOT NULL", &[&table]).await?;
    Ok(row.get(0))
}

#[tokio::test]
async fn fresh_databases_are_distinct_and_migrated() -> anyhow::Result<()> {
    let (first, second) = tokio::join!(fresh_db(), fresh_db());
    assert_ne!(first.name(), second.name());

    let first_client = first.pool().get().await?;
    let second_client = second.connect().await?;
    assert!(has_table(&first_client, "accounts").await?);
    assert!(has_table(&second_client, "accounts").await?);

    // What one test writes, another does not see.
    first_client.batch_execute("CREATE TABLE scratch (id int)").await?;
    assert!(has_table(&first_client, "scratch").await?);
    assert!(!has_table(&second_client, "scratch").await?);

    let current: String = second_client.query_one("SELECT current_database()", &[]).await?.get(0);
    assert_eq!(current, second.name());
    Ok(())
}

#[tokio::test]
async fn a_database_is_gone_after_drop() -> anyhow::Result<()> {
    let db = fresh_db().await;
    let name = db.name().to_owned();
    // An open session must not keep the database alive.
    let session = db.pool().get().await?;
    assert!(database_exists(&name).await?);
    drop(session);
    drop(db);
    assert!(!database_exists(&name).await?);
    Ok(())
}

#[tokio::test]
async fn empty_databases_have_no_migrations() -> anyhow::Result<()> {
    let db = empty_db().await;
    let client = db.connect().await?;
    assert!(!has_table(&client, "accounts").await?);
    assert!(!has_table(&client, "schema_migrations").await?);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_concurrent_callers_get_distinct_databases() -> anyhow::Result<()> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        tasks.spawn(async {
            let db = fresh_db().await;
            let client = db.connect().await?;
            let name: String = client.query_one("SELECT current_database()", &[]).await?.get(0);
            anyhow::ensure!(name == db.name());
            Ok(db)
        });
    }
    let mut names = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        names.push(joined??.name().to_owned());
    }
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), 8);
    Ok(())
}
