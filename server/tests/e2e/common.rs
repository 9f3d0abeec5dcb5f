//! What the end-to-end tests share: scratch folders and a look at processes.

use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;

/// A scratch folder under /tmp (short: socket paths must stay short), removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new() -> anyhow::Result<Self> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = PathBuf::from(format!("/tmp/hz-{}", &id[..10]));
        std::fs::create_dir(&dir)?;
        let scratch = Self(dir);
        // Reachable by the postgres user whatever the umask, so that no fallback kicks in.
        std::fs::set_permissions(&scratch.0, std::fs::Permissions::from_mode(0o755))?;
        Ok(scratch)
    }

    /// Where a test puts its PostgreSQL data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.0.join("pg")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether process `pid` exists and is not a zombie (exited, not yet reaped).
pub fn is_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| state != 'Z' && state != 'X')
    })
}
