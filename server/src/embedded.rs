//! The embedded PostgreSQL launcher: finds the server binaries, initialises a data directory on
//! first use and runs `postgres` as a child process that listens on a Unix socket only.
//!
//! PostgreSQL refuses to run as root, so when this process is root the cluster belongs to the
//! `postgres` system user and runs as it. A data directory that user cannot reach (a clone under
//! `/root`, say) is replaced by one under `/var/lib/hazina/`, with a warning.
//!
//! A cluster is either *owned* (the default: one process starts it, holds a lock file beside the
//! data directory for as long as it runs, and stops it) or *shared* (the test harness: whoever
//! comes first starts it, it outlives every process, and later starters attach to it). The lock
//! file is how a crash is told apart from a live owner: a `postgres` still running on a data
//! directory whose lock nobody holds was left behind by a crash and is stopped before starting.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read as _, Seek as _, SeekFrom};
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, PermissionsExt as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, Uid, User};
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

use crate::db::quote_ident;

/// The superuser `initdb` creates; clients connect as it over the Unix socket (trust auth).
pub const SUPERUSER: &str = "hazina";

/// The port only names the socket file (`.s.PGSQL.5432`): nothing listens on TCP.
const PORT: u16 = 5432;
const SOCKET_FILE: &str = ".s.PGSQL.5432";
/// `sun_path` holds 108 bytes on Linux; keep a margin for the `.lock` file beside the socket.
const SOCKET_PATH_LEN_MAX: usize = 100;
/// Where Debian's `postgresql-NN` packages put the server binaries, one folder per version.
const DEBIAN_BIN_ROOT: &str = "/usr/lib/postgresql";
/// Where data directories go when the configured one is unreachable by the `postgres` user.
const FALLBACK_ROOT: &str = "/var/lib/hazina";
/// Where sockets go when the data directory's path is too long for a socket path.
const SOCKET_FALLBACK_ROOT: &str = "/tmp";
const LOG_FILE: &str = "postgres.log";
/// The log is appended to across starts and moved aside to `postgres.log.1` past this size.
const LOG_ROTATE_BYTES: u64 = 16 * 1024 * 1024;
const LOG_TAIL_LINES: usize = 20;
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
const KILL_TIMEOUT: Duration = Duration::from_secs(5);
const DROP_WAIT: Duration = Duration::from_secs(1);
const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// A failure to find, initialise, start or stop the embedded PostgreSQL.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    /// No folder holds both `initdb` and `postgres`.
    #[error(
        "PostgreSQL server binaries (initdb, postgres) not found {searched}: install the Debian \
         package `postgresql` (apt-get install postgresql), or set DATABASE_URL to use an \
         existing PostgreSQL server"
    )]
    BinariesNotFound { searched: String },
    /// Running as root, and there is no `postgres` user to run PostgreSQL as.
    #[error(
        "running as root, and there is no `postgres` system user to run PostgreSQL as: install \
         the Debian package `postgresql` (it creates that user), or set DATABASE_URL to use an \
         existing PostgreSQL server"
    )]
    NoPostgresUser,
    /// The user database could not be read.
    #[error("could not look up the `postgres` system user")]
    UserLookup(#[source] nix::Error),
    /// A file system operation or a process spawn failed.
    #[error("could not {action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A directory meant for the cluster belongs to someone else.
    #[error("{} already exists and belongs to another user", path.display())]
    ForeignDirectory { path: PathBuf },
    /// The data directory holds files, but not a PostgreSQL cluster.
    #[error("data directory {} is not empty and holds no PostgreSQL cluster", path.display())]
    NotACluster { path: PathBuf },
    /// Another process owns the cluster on this data directory.
    #[error("data directory {} is in use by another hazina process", path.display())]
    InUse { path: PathBuf },
    /// Another process held the lock of a shared cluster for too long.
    #[error("timed out waiting for the lock {}", path.display())]
    LockTimeout { path: PathBuf },
    /// `initdb` failed; its output says why.
    #[error("initdb failed ({status}):\n{output}")]
    Initdb { status: std::process::ExitStatus, output: String },
    /// `postgres` exited before accepting connections; its log says why.
    #[error("postgres exited during startup ({status}); last lines of {}:\n{tail}", log.display())]
    Exited { status: String, log: PathBuf, tail: String },
    /// `postgres` did not accept connections before the deadline.
    #[error(
        "postgres did not accept connections within {}s; last lines of {}:\n{tail}",
        timeout.as_secs(),
        log.display()
    )]
    StartTimeout { timeout: Duration, log: PathBuf, tail: String },
    /// `postgres` survived SIGINT, SIGQUIT and SIGKILL.
    #[error("postgres (pid {pid}) did not stop")]
    StillRunning { pid: i32 },
    /// A signal could not be sent.
    #[error("could not signal postgres (pid {pid})")]
    Signal {
        pid: i32,
        #[source]
        source: nix::Error,
    },
    /// The application database could not be created.
    #[error("could not create database {name}")]
    CreateDatabase {
        name: String,
        #[source]
        source: tokio_postgres::Error,
    },
}

impl EmbeddedError {
    fn io(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Self {
        let path = path.to_path_buf();
        move |source| Self::Io { action, path, source }
    }
}

/// How to start a cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// The data directory; created and initialised on first use.
    pub data_dir: PathBuf,
    /// The database to create (if missing) and to connect to.
    pub database: String,
    /// Extra server settings, passed as `-c name=value`.
    pub settings: Vec<(String, String)>,
    /// Run `initdb --no-sync`: faster, and fine for throw-away clusters only.
    pub no_sync: bool,
    /// The only folder to look for `initdb` and `postgres` in, instead of the usual search.
    pub bin_dir: Option<PathBuf>,
    /// A shared cluster outlives this process: start attaches to one already running, and
    /// dropping the [`Cluster`] leaves it running (see the module documentation).
    pub shared: bool,
    /// How long to wait for `postgres` to accept connections (crash recovery can take a while).
    pub start_timeout: Duration,
}

impl ClusterOptions {
    /// Durable defaults: database `hazina`, no extra settings, owned, 60 s to start.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            database: "hazina".to_owned(),
            settings: Vec::new(),
            no_sync: false,
            bin_dir: None,
            shared: false,
            start_timeout: Duration::from_secs(60),
        }
    }
}

/// The PostgreSQL server binaries to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binaries {
    pub initdb: PathBuf,
    pub postgres: PathBuf,
}

/// A running PostgreSQL cluster.
#[derive(Debug)]
pub struct Cluster {
    data_dir: PathBuf,
    socket_dir: PathBuf,
    log_path: PathBuf,
    database: String,
    pid: Pid,
    /// `None` when attached to a shared cluster that another process started.
    child: Option<Child>,
    shared: bool,
    stopped: bool,
    /// Held for the cluster's lifetime when owned; released by drop, after the stop signal.
    lock: Option<File>,
}

impl Cluster {
    /// Finds the binaries, initialises the data directory if needed, starts `postgres` (or
    /// attaches to a running shared cluster), waits until it accepts connections and creates
    /// the database if missing.
    pub async fn start(opts: ClusterOptions) -> Result<Self, EmbeddedError> {
        let owner = postgres_user()?;
        let data_dir = resolve_data_dir(&opts.data_dir, owner.as_ref())?;
        let version = fs::read_to_string(data_dir.join("PG_VERSION")).ok();
        let binaries = find_binaries(opts.bin_dir.as_deref(), version.as_deref().map(str::trim))?;

        create_parents(&data_dir, owner.as_ref())?;
        let lock = acquire_lock(&data_dir, opts.shared, opts.start_timeout).await?;
        prepare_private_dir(&data_dir, owner.as_ref(), false)?;
        let socket_dir = socket_dir_for(&data_dir);
        if socket_dir != data_dir {
            tracing::info!(
                socket_dir = %socket_dir.display(),
                "the data directory's path is too long for a Unix socket; using a short one"
            );
            prepare_private_dir(&socket_dir, owner.as_ref(), true)?;
        }
        let log_path = data_dir.join(LOG_FILE);
        let mut cluster = Self {
            data_dir,
            socket_dir,
            log_path,
            database: opts.database.clone(),
            pid: Pid::from_raw(0),
            child: None,
            shared: opts.shared,
            stopped: true,
            lock: None,
        };

        if let Some(pid) = running_postmaster(&cluster.data_dir)? {
            if opts.shared {
                cluster.pid = pid;
                let offset = file_len(&cluster.log_path);
                match cluster.wait_ready(opts.start_timeout, offset).await {
                    Ok(()) => {
                        tracing::debug!(pid = pid.as_raw(), "attached to a running PostgreSQL");
                        cluster.ensure_database().await?;
                        return Ok(cluster);
                    }
                    Err(error) => tracing::warn!(
                        pid = pid.as_raw(),
                        error = %crate::error_chain(&error),
                        "a running PostgreSQL does not answer; restarting it"
                    ),
                }
            } else {
                tracing::warn!(
                    pid = pid.as_raw(),
                    data_dir = %cluster.data_dir.display(),
                    "stopping a PostgreSQL left running by an earlier, crashed process"
                );
            }
            shut_down(pid, None).await?;
            // A postmaster that had to be killed leaves its pid file behind; this removes it.
            running_postmaster(&cluster.data_dir)?;
        }

        // Read again under the lock: another starter may have initialised it meanwhile.
        if !cluster.data_dir.join("PG_VERSION").exists() {
            if !is_empty_dir(&cluster.data_dir)? {
                return Err(EmbeddedError::NotACluster { path: cluster.data_dir.clone() });
            }
            initdb(&binaries, &cluster.data_dir, owner.as_ref(), opts.no_sync).await?;
        }

        let (log, offset) = open_log(&cluster.log_path, owner.as_ref())?;
        let child = spawn_postgres(&binaries, &cluster, &opts.settings, owner.as_ref(), log)?;
        // Linux pids fit in an i32 (pid_max is at most 2^22), so the fallback is never used.
        cluster.pid = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
        cluster.child = Some(child);
        cluster.stopped = false;
        if let Err(error) = cluster.wait_ready(opts.start_timeout, offset).await {
            cluster.stopped = true;
            // Best effort: the startup error is the one worth reporting.
            let _ = shut_down(cluster.pid, cluster.child.as_mut()).await;
            return Err(error);
        }
        tracing::info!(
            pid = cluster.pid.as_raw(),
            data_dir = %cluster.data_dir.display(),
            socket_dir = %cluster.socket_dir.display(),
            "started the embedded PostgreSQL"
        );
        cluster.ensure_database().await?;
        if !opts.shared {
            cluster.lock = Some(lock);
        }
        Ok(cluster)
    }

    /// The connection settings: the socket folder as host, the superuser and the database.
    pub fn pg_config(&self) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        config.host_path(&self.socket_dir).port(PORT).user(SUPERUSER).dbname(&self.database);
        config
    }

    /// The data directory actually used (it differs from the configured one after a fallback).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The folder holding the Unix socket.
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    /// The file `postgres` logs to.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The postmaster's process id.
    pub fn pid(&self) -> i32 {
        self.pid.as_raw()
    }

    /// Stops the cluster with a fast shutdown (SIGINT: sessions are ended, data is flushed),
    /// escalating to SIGQUIT and then SIGKILL if it does not exit in time.
    pub async fn stop(mut self) -> Result<(), EmbeddedError> {
        self.stopped = true;
        shut_down(self.pid, self.child.as_mut()).await?;
        tracing::info!(pid = self.pid.as_raw(), "stopped the embedded PostgreSQL");
        Ok(())
    }

    async fn wait_ready(
        &mut self,
        timeout: Duration,
        log_offset: u64,
    ) -> Result<(), EmbeddedError> {
        let deadline = Instant::now() + timeout;
        let mut config = self.pg_config();
        config.dbname("postgres").connect_timeout(Duration::from_secs(2));
        loop {
            let exited = match &mut self.child {
                Some(child) => child
                    .try_wait()
                    .map_err(EmbeddedError::io("wait for", &self.data_dir))?
                    .map(|status| status.to_string()),
                None => (!is_alive(self.pid)).then(|| "gone".to_owned()),
            };
            if let Some(status) = exited {
                return Err(EmbeddedError::Exited {
                    status,
                    log: self.log_path.clone(),
                    tail: log_tail(&self.log_path, log_offset),
                });
            }
            match config.connect(NoTls).await {
                Ok(_) => return Ok(()),
                // Any answer but "starting up / shutting down" means the server runs: refusing
                // a connection for too many clients, say, is no reason to restart a shared one.
                Err(error)
                    if error.code().is_some_and(|code| *code != SqlState::CANNOT_CONNECT_NOW) =>
                {
                    return Ok(());
                }
                Err(_) => {}
            }
            if Instant::now() >= deadline {
                return Err(EmbeddedError::StartTimeout {
                    timeout,
                    log: self.log_path.clone(),
                    tail: log_tail(&self.log_path, log_offset),
                });
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    async fn ensure_database(&self) -> Result<(), EmbeddedError> {
        let name = self.database.clone();
        let failed = |source| EmbeddedError::CreateDatabase { name: name.clone(), source };
        let mut config = self.pg_config();
        config.dbname("postgres");
        let (client, connection) = config.connect(NoTls).await.map_err(failed)?;
        let driver = tokio::spawn(connection);
        let exists = client
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&self.database])
            .await
            .map_err(failed)?
            .is_some();
        if !exists {
            match client.batch_execute(&format!("CREATE DATABASE {}", quote_ident(&name))).await {
                Ok(()) => tracing::info!(database = %name, "created the database"),
                // Another process created it between the check and here: just as good.
                Err(error) if error.code() == Some(&SqlState::DUPLICATE_DATABASE) => {}
                Err(error) => return Err(failed(error)),
            }
        }
        drop(client);
        // The driver ends once the client is gone; its result says nothing new.
        let _ = driver.await;
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.stopped || self.shared {
            return;
        }
        // Best effort, and short: ask for a fast shutdown and reap the child if it is quick.
        // `postgres` finishes shutting down on its own if this process exits first.
        let _ = kill(self.pid, Signal::SIGINT);
        if let Some(child) = &mut self.child {
            let deadline = Instant::now() + DROP_WAIT;
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(POLL_INTERVAL);
            }
        }
    }
}

/// A short, stable hash of some bytes (FNV-1a, 64 bits, 12 hex digits) for naming folders after
/// paths. Not a security measure.
pub fn short_hash(bytes: &[u8]) -> String {
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{hash:016x}")[..12].to_owned()
}

/// Finds a folder holding both `initdb` and `postgres`: `bin_dir` alone when given; else the
/// Debian folder of the data directory's `version` when it exists, then `PATH`, then the
/// newest `/usr/lib/postgresql/*/bin`.
pub fn find_binaries(
    bin_dir: Option<&Path>,
    version: Option<&str>,
) -> Result<Binaries, EmbeddedError> {
    if let Some(dir) = bin_dir {
        return binaries_in(dir).ok_or_else(|| EmbeddedError::BinariesNotFound {
            searched: format!("in {}", dir.display()),
        });
    }
    let root = Path::new(DEBIAN_BIN_ROOT);
    // A data directory only runs under its own major version, so prefer that one when present.
    let same_version = version.and_then(|version| binaries_in(&root.join(version).join("bin")));
    let on_path = || {
        std::env::var_os("PATH")
            .and_then(|path| std::env::split_paths(&path).find_map(|dir| binaries_in(&dir)))
    };
    same_version.or_else(on_path).or_else(|| newest_versioned_bin(root)).ok_or_else(|| {
        EmbeddedError::BinariesNotFound {
            searched: format!("on PATH nor in {DEBIAN_BIN_ROOT}/*/bin"),
        }
    })
}

fn binaries_in(dir: &Path) -> Option<Binaries> {
    let initdb = dir.join("initdb");
    let postgres = dir.join("postgres");
    (is_executable(&initdb) && is_executable(&postgres)).then_some(Binaries { initdb, postgres })
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|meta| meta.is_file() && meta.mode() & 0o111 != 0)
}

/// The binaries of the highest version under `root` (`root/<version>/bin`), comparing versions
/// numerically so that 10 beats 9.6.
fn newest_versioned_bin(root: &Path) -> Option<Binaries> {
    fs::read_dir(root)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = parse_version(entry.file_name().to_str()?)?;
            Some((version, binaries_in(&entry.path().join("bin"))?))
        })
        .max_by(|(a, _), (b, _)| a.cmp(b))
        .map(|(_, binaries)| binaries)
}

fn parse_version(name: &str) -> Option<Vec<u32>> {
    name.split('.').map(|part| part.parse().ok()).collect()
}

/// The user to run PostgreSQL as: `None` (this process's user) unless this process is root.
fn postgres_user() -> Result<Option<User>, EmbeddedError> {
    if !Uid::effective().is_root() {
        return Ok(None);
    }
    match User::from_name("postgres") {
        Ok(Some(user)) => Ok(Some(user)),
        Ok(None) => Err(EmbeddedError::NoPostgresUser),
        Err(error) => Err(EmbeddedError::UserLookup(error)),
    }
}

/// The absolute data directory to use: the configured one, or a fallback under
/// `/var/lib/hazina/` when the `postgres` user could not reach it.
fn resolve_data_dir(configured: &Path, owner: Option<&User>) -> Result<PathBuf, EmbeddedError> {
    let configured = absolute(configured)?;
    let Some(user) = owner else { return Ok(configured) };
    let Some(blocker) = configured
        .ancestors()
        .skip(1)
        .find(|dir| fs::metadata(dir).is_ok_and(|meta| !traversable(&meta, user)))
    else {
        return Ok(configured);
    };
    let fallback =
        Path::new(FALLBACK_ROOT).join(short_hash(configured.as_os_str().as_bytes())).join("pg");
    tracing::warn!(
        configured = %configured.display(),
        blocked_at = %blocker.display(),
        using = %fallback.display(),
        "the postgres user cannot reach the configured data directory; using a fallback one"
    );
    Ok(fallback)
}

/// `path` made absolute, with its longest existing prefix canonicalised (symlinks and `.`
/// resolved) so that the same folder always gets the same name and hash.
fn absolute(path: &Path) -> Result<PathBuf, EmbeddedError> {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        let cwd = std::env::current_dir()
            .map_err(EmbeddedError::io("read the current directory", Path::new(".")))?;
        cwd.join(path)
    };
    let mut existing = joined.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(mut canonical) = existing.canonicalize() {
            canonical.extend(rest.iter().rev());
            return Ok(canonical);
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name);
                existing = parent;
            }
            _ => return Ok(joined),
        }
    }
}

/// Whether `user` may search (traverse) the folder described by `meta`. Only the primary group
/// counts, because the child runs with its supplementary groups dropped.
fn traversable(meta: &fs::Metadata, user: &User) -> bool {
    let mode = meta.mode();
    if meta.uid() == user.uid.as_raw() {
        mode & 0o100 != 0
    } else if meta.gid() == user.gid.as_raw() {
        mode & 0o010 != 0
    } else {
        mode & 0o001 != 0
    }
}

/// Creates the missing parents of `dir`. As root they get mode 0755 whatever the umask, so
/// that the `postgres` user can traverse them.
fn create_parents(dir: &Path, owner: Option<&User>) -> Result<(), EmbeddedError> {
    let Some(parent) = dir.parent() else { return Ok(()) };
    if owner.is_none() {
        return fs::create_dir_all(parent).map_err(EmbeddedError::io("create", parent));
    }
    let missing: Vec<&Path> = parent.ancestors().take_while(|dir| !dir.exists()).collect();
    for dir in missing.into_iter().rev() {
        match fs::create_dir(dir) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(error) => return Err(EmbeddedError::io("create", dir)(error)),
        }
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
            .map_err(EmbeddedError::io("set the permissions of", dir))?;
    }
    Ok(())
}

/// Makes sure `dir` exists with mode 0700 and belongs to the user PostgreSQL runs as. An
/// existing, non-empty folder is left as it is (it holds a cluster, and PostgreSQL checks its
/// ownership itself), unless `check_owner` asks to refuse a folder of another user.
fn prepare_private_dir(
    dir: &Path,
    owner: Option<&User>,
    check_owner: bool,
) -> Result<(), EmbeddedError> {
    let uid = owner.map_or_else(Uid::effective, |user| user.uid);
    match fs::symlink_metadata(dir) {
        Ok(meta) => {
            if check_owner && (!meta.is_dir() || meta.uid() != uid.as_raw()) {
                return Err(EmbeddedError::ForeignDirectory { path: dir.to_path_buf() });
            }
            if !is_empty_dir(dir)? {
                return Ok(());
            }
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            match DirBuilder::new().mode(0o700).create(dir) {
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
                Err(error) => return Err(EmbeddedError::io("create", dir)(error)),
            }
        }
        Err(error) => return Err(EmbeddedError::io("inspect", dir)(error)),
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .map_err(EmbeddedError::io("set the permissions of", dir))?;
    give_to(dir, owner)
}

fn give_to(path: &Path, owner: Option<&User>) -> Result<(), EmbeddedError> {
    let Some(user) = owner else { return Ok(()) };
    std::os::unix::fs::chown(path, Some(user.uid.as_raw()), Some(user.gid.as_raw()))
        .map_err(EmbeddedError::io("give to the postgres user", path))
}

fn is_empty_dir(dir: &Path) -> Result<bool, EmbeddedError> {
    let mut entries = fs::read_dir(dir).map_err(EmbeddedError::io("list", dir))?;
    Ok(entries.next().is_none())
}

/// The folder for the Unix socket: the data directory, unless the socket's path would be too
/// long, in which case a short folder under `/tmp` named after the data directory.
fn socket_dir_for(data_dir: &Path) -> PathBuf {
    if data_dir.join(SOCKET_FILE).as_os_str().len() <= SOCKET_PATH_LEN_MAX {
        data_dir.to_path_buf()
    } else {
        let name = format!("hazina-{}", short_hash(data_dir.as_os_str().as_bytes()));
        Path::new(SOCKET_FALLBACK_ROOT).join(name)
    }
}

/// Locks `<data_dir>.lock`. An owned cluster fails at once when another process holds it; a
/// shared one waits for the other starter to finish (up to twice the start timeout).
async fn acquire_lock(
    data_dir: &Path,
    shared: bool,
    start_timeout: Duration,
) -> Result<File, EmbeddedError> {
    let mut name = data_dir.file_name().unwrap_or(data_dir.as_os_str()).to_os_string();
    name.push(".lock");
    let path = data_dir.with_file_name(name);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(EmbeddedError::io("open the lock file", &path))?;
    let deadline = Instant::now() + start_timeout * 2;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(fs::TryLockError::WouldBlock) if !shared => {
                return Err(EmbeddedError::InUse { path: data_dir.to_path_buf() });
            }
            Err(fs::TryLockError::WouldBlock) if Instant::now() >= deadline => {
                return Err(EmbeddedError::LockTimeout { path });
            }
            Err(fs::TryLockError::WouldBlock) => tokio::time::sleep(POLL_INTERVAL).await,
            Err(fs::TryLockError::Error(error)) => {
                return Err(EmbeddedError::io("lock", &path)(error));
            }
        }
    }
}

/// The pid of a live postmaster running on `data_dir`, if any. A `postmaster.pid` naming a dead
/// process, or a live one that is not that postmaster (the pid was reused), is stale: removed.
fn running_postmaster(data_dir: &Path) -> Result<Option<Pid>, EmbeddedError> {
    let pid_file = data_dir.join("postmaster.pid");
    let text = match fs::read_to_string(&pid_file) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(EmbeddedError::io("read", &pid_file)(error)),
    };
    let pid = text.lines().next().and_then(|line| line.trim().parse::<i32>().ok());
    if let Some(pid) = pid.filter(|pid| *pid > 0).map(Pid::from_raw)
        && is_postmaster_of(pid, data_dir)
    {
        return Ok(Some(pid));
    }
    tracing::info!(path = %pid_file.display(), "removing a stale postmaster.pid left by a crash");
    match fs::remove_file(&pid_file) {
        Ok(()) => Ok(None),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(EmbeddedError::io("remove", &pid_file)(error)),
    }
}

/// Whether `pid` is a live `postgres` whose data directory is `data_dir`. The postmaster changes
/// into its data directory at startup, so its working directory tells; its command line (which
/// holds `-D <data_dir>`) is the second opinion when the working directory cannot be read.
fn is_postmaster_of(pid: Pid, data_dir: &Path) -> bool {
    if !is_alive(pid) {
        return false;
    }
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let comm = fs::read_to_string(proc_dir.join("comm")).unwrap_or_default();
    if comm.trim_end() != "postgres" {
        return false;
    }
    let data_dir = data_dir.canonicalize().unwrap_or_else(|_| data_dir.to_path_buf());
    match fs::read_link(proc_dir.join("cwd")) {
        Ok(cwd) => cwd == data_dir,
        Err(_) => fs::read(proc_dir.join("cmdline")).is_ok_and(|cmdline| {
            cmdline.split(|b| *b == 0).any(|arg| arg == data_dir.as_os_str().as_bytes())
        }),
    }
}

/// Whether `pid` names a process that has not exited (a zombie has).
fn is_alive(pid: Pid) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    // The state follows the command name, which is in parentheses and may hold any character.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next())
        .is_some_and(|state| state != 'Z' && state != 'X')
}

/// Stops the postmaster `pid`: SIGINT (fast shutdown), then SIGQUIT (immediate shutdown), then
/// SIGKILL, each with a deadline. `child` is the process when it is ours, so it gets reaped.
async fn shut_down(pid: Pid, mut child: Option<&mut Child>) -> Result<(), EmbeddedError> {
    let steps = [
        (Signal::SIGINT, STOP_TIMEOUT),
        (Signal::SIGQUIT, KILL_TIMEOUT),
        (Signal::SIGKILL, KILL_TIMEOUT),
    ];
    for (signal, timeout) in steps {
        match kill(pid, signal) {
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(source) => return Err(EmbeddedError::Signal { pid: pid.as_raw(), source }),
        }
        if wait_exit(pid, child.as_deref_mut(), timeout).await {
            return Ok(());
        }
        tracing::warn!(pid = pid.as_raw(), ?signal, "postgres did not stop in time");
    }
    Err(EmbeddedError::StillRunning { pid: pid.as_raw() })
}

async fn wait_exit(pid: Pid, mut child: Option<&mut Child>, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let exited = match child.as_deref_mut() {
            // An error here means the child was already reaped.
            Some(child) => !matches!(child.try_wait(), Ok(None)),
            None => !is_alive(pid),
        };
        if exited {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Runs `initdb`: trust authentication (the socket is private to the owner), the `hazina`
/// superuser, UTF-8 and the C locale (byte order: the same on every machine).
async fn initdb(
    binaries: &Binaries,
    data_dir: &Path,
    owner: Option<&User>,
    no_sync: bool,
) -> Result<(), EmbeddedError> {
    let mut command = Command::new(&binaries.initdb);
    command
        .arg("--pgdata")
        .arg(data_dir)
        .arg("--auth=trust")
        .arg(format!("--username={SUPERUSER}"))
        .arg("--encoding=UTF8")
        .arg("--locale=C")
        .env("LC_ALL", "C")
        .current_dir(data_dir)
        .stdin(Stdio::null());
    if no_sync {
        command.arg("--no-sync");
    }
    run_as(&mut command, owner);
    let initdb = binaries.initdb.clone();
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .map_err(|error| EmbeddedError::io("run", &initdb)(io::Error::other(error)))?
        .map_err(EmbeddedError::io("run", &binaries.initdb))?;
    if !output.status.success() {
        let text =
            String::from_utf8_lossy(&output.stdout) + String::from_utf8_lossy(&output.stderr);
        return Err(EmbeddedError::Initdb { status: output.status, output: last_lines(&text) });
    }
    tracing::info!(data_dir = %data_dir.display(), "initialised a new PostgreSQL cluster");
    Ok(())
}

fn run_as(command: &mut Command, owner: Option<&User>) {
    if let Some(user) = owner {
        // std drops the supplementary groups when a root parent sets the uid.
        command.uid(user.uid.as_raw()).gid(user.gid.as_raw());
    }
}

/// Opens the log for appending (after moving a large one aside); returns it and its length,
/// from which on the lines belong to this start.
fn open_log(path: &Path, owner: Option<&User>) -> Result<(File, u64), EmbeddedError> {
    if fs::metadata(path).is_ok_and(|meta| meta.len() > LOG_ROTATE_BYTES) {
        let old = path.with_extension("log.1");
        fs::rename(path, &old).map_err(EmbeddedError::io("rotate", path))?;
    }
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(EmbeddedError::io("open", path))?;
    give_to(path, owner)?;
    let offset = file.metadata().map_or(0, |meta| meta.len());
    Ok((file, offset))
}

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).map_or(0, |meta| meta.len())
}

/// Starts the postmaster in its own process group, so that a Ctrl-C meant for this process
/// does not reach it: this process stops it after its own graceful shutdown.
fn spawn_postgres(
    binaries: &Binaries,
    cluster: &Cluster,
    settings: &[(String, String)],
    owner: Option<&User>,
    log: File,
) -> Result<Child, EmbeddedError> {
    let log_err = log.try_clone().map_err(EmbeddedError::io("open", &cluster.log_path))?;
    let mut socket_setting = std::ffi::OsString::from("unix_socket_directories=");
    socket_setting.push(quote_list_item(&cluster.socket_dir));
    let mut command = Command::new(&binaries.postgres);
    command
        .arg("-D")
        .arg(&cluster.data_dir)
        .args(["-c", "listen_addresses="])
        .args(["-c", &format!("port={PORT}")])
        .arg("-c")
        .arg(socket_setting)
        .args(["-c", "unix_socket_permissions=0700"]);
    for (name, value) in settings {
        command.arg("-c").arg(format!("{name}={value}"));
    }
    command
        .current_dir(&cluster.data_dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .process_group(0);
    run_as(&mut command, owner);
    command.spawn().map_err(EmbeddedError::io("run", &binaries.postgres))
}

/// A path as one item of a PostgreSQL list setting: double-quoted when it holds a separator.
fn quote_list_item(path: &Path) -> std::ffi::OsString {
    let bytes = path.as_os_str().as_bytes();
    if !bytes.iter().any(|b| matches!(b, b',' | b'"') || b.is_ascii_whitespace()) {
        return path.as_os_str().to_os_string();
    }
    let mut quoted = Vec::with_capacity(bytes.len() + 2);
    quoted.push(b'"');
    for byte in bytes {
        if *byte == b'"' {
            quoted.push(b'"');
        }
        quoted.push(*byte);
    }
    quoted.push(b'"');
    std::ffi::OsString::from(std::ffi::OsStr::from_bytes(&quoted))
}

/// The last lines of the log written since `offset`.
fn log_tail(path: &Path, offset: u64) -> String {
    let read = || -> io::Result<String> {
        let mut file = File::open(path)?;
        let len = file.metadata()?.len();
        // A rotated log is shorter than the offset: read it whole.
        file.seek(SeekFrom::Start(if offset <= len { offset } else { 0 }))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(last_lines(&String::from_utf8_lossy(&bytes)))
    };
    read().unwrap_or_else(|error| format!("(could not read the log: {error})"))
}

fn last_lines(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_version_wins_numerically() {
        let root = std::env::temp_dir().join(format!("hazina-bins-{}", std::process::id()));
        for version in ["9.6", "10", "15", "16"] {
            let bin = root.join(version).join("bin");
            fs::create_dir_all(&bin).unwrap();
            // 16 lacks `initdb`, so it does not count.
            let names: &[&str] =
                if version == "16" { &["postgres"] } else { &["initdb", "postgres"] };
            for name in names {
                fs::write(bin.join(name), "").unwrap();
                fs::set_permissions(bin.join(name), fs::Permissions::from_mode(0o755)).unwrap();
            }
        }
        fs::create_dir_all(root.join("not-a-version/bin")).unwrap();
        let found = newest_versioned_bin(&root);
        fs::remove_dir_all(&root).unwrap();
        assert_eq!(found.map(|b| b.postgres), Some(root.join("15/bin/postgres")));
    }

    #[test]
    fn missing_binaries_name_the_package_and_the_alternative() {
        let empty = std::env::temp_dir().join(format!("hazina-nobins-{}", std::process::id()));
        fs::create_dir_all(&empty).unwrap();
        let error = find_binaries(Some(&empty), None).unwrap_err().to_string();
        fs::remove_dir_all(&empty).unwrap();
        assert!(!error.contains('\n'), "{error}");
        assert!(error.contains("`postgresql`") && error.contains("DATABASE_URL"), "{error}");
    }

    #[test]
    fn long_data_dirs_get_a_short_socket_dir() {
        let short = Path::new("/tmp/hz/pg");
        assert_eq!(socket_dir_for(short), short);
        let long = PathBuf::from(format!("/tmp/{}/pg", "x".repeat(100)));
        let socket_dir = socket_dir_for(&long);
        assert!(socket_dir.to_string_lossy().starts_with("/tmp/hazina-"), "{socket_dir:?}");
        assert!(socket_dir.join(SOCKET_FILE).as_os_str().len() <= SOCKET_PATH_LEN_MAX);
        assert_eq!(socket_dir, socket_dir_for(&long), "the same data dir, the same socket dir");
    }

    #[test]
    fn list_items_are_quoted_only_when_needed() {
        assert_eq!(quote_list_item(Path::new("/tmp/a")), "/tmp/a");
        assert_eq!(quote_list_item(Path::new("/tmp/a b,\"c")), "\"/tmp/a b,\"\"c\"");
    }

    #[test]
    fn a_dead_pid_is_not_alive_and_this_one_is() {
        assert!(is_alive(Pid::this()));
        let mut child = Command::new("true").spawn().unwrap();
        let pid = Pid::from_raw(i32::try_from(child.id()).unwrap());
        child.wait().unwrap();
        assert!(!is_alive(pid));
    }

    #[test]
    fn short_hash_is_stable() {
        assert_eq!(short_hash(b"/work/main"), short_hash(b"/work/main"));
        assert_ne!(short_hash(b"/work/main"), short_hash(b"/work/main2"));
        assert_eq!(short_hash(b"").len(), 12);
    }
}
