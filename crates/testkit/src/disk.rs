//! A real full disk for tests: a small tmpfs mounted for one test (mounting needs root, which CI has)
//! and a filler file that leaves only a chosen number of bytes free.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted for one test, unmounted (lazily) when dropped.
#[derive(Debug)]
pub struct Tmpfs {
    /// Where it is mounted.
    pub path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `mib` MiB, or `None` when this process may not mount.
    pub fn mount(mib: u32) -> Option<Self> {
        let dir = tempfile::tempdir().ok()?;
        let path = dir.path().to_owned();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m,mode=0700"), "tmpfs"])
            .arg(&path)
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?;
        status.success().then_some(Self { path, _dir: dir })
    }

    /// Fills the file system until fewer than `leave` bytes are free; returns the filler file, whose
    /// removal frees the space again.
    pub fn fill(&self, leave: u64) -> PathBuf {
        let filler = self.path.join("filler");
        let size = free_bytes(&self.path).saturating_sub(leave);
        std::fs::write(&filler, vec![0u8; usize::try_from(size).expect("size fits")]).expect("write filler");
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Bytes free to an unprivileged writer on the file system holding `path`.
pub fn free_bytes(path: &Path) -> u64 {
    let out = Command::new("df").args(["-B1", "--output=avail"]).arg(path).output().expect("run df");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|line| line.trim().parse().ok())
        .expect("df prints the free bytes")
}
