//! The embedded PostgreSQL launcher as a library: startup failures carry the log, long paths
//! get a short socket folder, and shared clusters outlive their `Cluster` value.

use std::path::PathBuf;

use hazina_server::embedded::{Cluster, ClusterOptions, EmbeddedError};

use crate::common::{Scratch, is_alive};

fn options(data_dir: PathBuf) -> ClusterOptions {
    ClusterOptions { no_sync: true, ..ClusterOptions::new(data_dir) }
}

async fn answers(cluster: &Cluster) -> anyhow::Result<String> {
    let client = hazina_server::db::connect(&cluster.pg_config()).await?;
    Ok(client.query_one("SELECT current_database()", &[]).await?.get(0))
}

#[tokio::test]
async fn a_postgres_that_exits_at_startup_reports_its_log() -> anyhow::Result<()> {
    let scratch = Scratch::new()?;
    let mut options = options(scratch.data_dir());
    options.settings.push(("no_such_setting".to_owned(), "1".to_owned()));
    let error = Cluster::start(options).await.err().ok_or_else(|| anyhow::anyhow!("it started"))?;
    assert!(matches!(error, EmbeddedError::Exited { .. }), "{error:?}");
    assert!(error.to_string().contains("no_such_setting"), "{error}");
    assert!(!scratch.0.join("pg/postmaster.pid").exists());
    Ok(())
}

#[tokio::test]
async fn long_data_dirs_get_a_short_socket_dir() -> anyhow::Result<()> {
    let scratch = Scratch::new()?;
    let data_dir = scratch.0.join("x".repeat(90)).join("pg");
    let cluster = Cluster::start(options(data_dir.clone())).await?;
    assert_eq!(cluster.data_dir(), data_dir);
    assert_ne!(cluster.socket_dir(), data_dir);
    assert!(cluster.socket_dir().join(".s.PGSQL.5432").as_os_str().len() <= 100);
    assert_eq!(answers(&cluster).await?, "hazina");
    let socket_dir = cluster.socket_dir().to_path_buf();
    cluster.stop().await?;
    let _ = std::fs::remove_dir_all(socket_dir);
    Ok(())
}

#[tokio::test]
async fn shared_clusters_outlive_their_value_and_are_attached_to() -> anyhow::Result<()> {
    let scratch = Scratch::new()?;
    let shared = ClusterOptions { shared: true, ..options(scratch.data_dir()) };

    let first = Cluster::start(shared.clone()).await?;
    let pid = first.pid();
    drop(first);
    assert!(is_alive(pid), "dropping a shared cluster leaves it running");

    let second = Cluster::start(shared).await?;
    assert_eq!(second.pid(), pid, "the running cluster is attached to, not restarted");
    assert_eq!(answers(&second).await?, "hazina");
    second.stop().await?;
    assert!(!is_alive(pid));
    assert!(!scratch.0.join("pg/postmaster.pid").exists());
    Ok(())
}

#[tokio::test]
async fn an_owned_cluster_stops_when_dropped() -> anyhow::Result<()> {
    let scratch = Scratch::new()?;
    let cluster = Cluster::start(options(scratch.data_dir())).await?;
    let pid = cluster.pid();
    drop(cluster);
    hazina_tests::wait_for("postgres to exit", std::time::Duration::from_secs(30), || async {
        (!is_alive(pid)).then_some(())
    })
    .await
}
