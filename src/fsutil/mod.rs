//! File-system helpers every writer uses.
//!
//! - [`write_atomic`]: small-file writes that readers never see half-done: the bytes go to a
//!   hidden temp file in the same directory, which is then renamed over the destination (atomic
//!   on POSIX). Large binary files (token stores, ledgers) are streamed by their own writers to
//!   [`tmp_path`] and moved into place with [`commit_rename`], which also fsyncs the directory.
//! - [`binheader`]: the checked 64-byte header every binary file starts with.
//! - [`DirLock`]: one writing process per directory (run, prepared data, sweep).
//! - [`to_checksummed_json`], [`from_checksummed_json`]: JSON state files that carry a
//!   checksum of their own content.
//! - [`fault`]: named points where a crash test can have the process killed.

pub mod binheader;
mod checksum;
pub mod fault;
mod lock;

pub use checksum::{from_checksummed_json, to_checksummed_json, ChecksumError, CHECKSUM_FIELD};
pub use lock::{DirLock, LockError, LOCK_FILE};

use std::path::{Path, PathBuf};

/// Whether `name` can be used as one file or directory name inside a folder the program owns:
/// non-empty, letters, digits, `.`, `_`, `-` only, and not `.`/`..` or hidden (no path
/// separator can then take it elsewhere).
pub fn is_safe_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Seconds since the Unix epoch, as stamped into state files (0 if the clock is before it).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Writes `bytes` to `path` via `.<name>.tmp` and a rename; on error the old file is intact.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = hidden_temp_path(path);
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

fn hidden_temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{}.tmp", name.unwrap_or_default()))
}

/// `<path>.tmp`: where a large file is written before [`commit_rename`] moves it into place.
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut os = path.as_os_str().to_owned();
    os.push(".tmp");
    PathBuf::from(os)
}

/// Renames `tmp` (synced by the caller) onto `dest`, then fsyncs the directory so the rename
/// survives a crash; best effort, as some platforms cannot and the rename already happened.
pub fn commit_rename(tmp: &Path, dest: &Path) -> std::io::Result<()> {
    std::fs::rename(tmp, dest)?;
    let dir = match dest.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_names_cannot_leave_their_folder() {
        for ok in ["tiny", "gpt2-124m", "lfr_drop.5", "s1"] {
            assert!(is_safe_name(ok), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "../../../escape",
            "a/b",
            "a\\b",
            ".hidden",
            "x y",
            "é",
        ] {
            assert!(!is_safe_name(bad), "{bad}");
        }
    }

    #[test]
    fn replaces_the_file_and_leaves_no_temp_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
        // A destination that cannot be written leaves nothing half-made.
        assert!(write_atomic(&dir.path().join("missing/a.json"), b"x").is_err());
    }
}
