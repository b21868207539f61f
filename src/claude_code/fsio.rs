//! File plumbing for editing a file another program owns: a lock beside it, a backup, and an atomic replacement
//! that keeps the file's mode and writes through a symlink instead of replacing it.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::ClaudeCodeError;

/// How long `setup`/`restore` wait for another one working on the same file. Holders keep the lock for one small
/// read-modify-write (plus, at most, a keychain call), so this is generous.
pub(crate) const LOCK_TIMEOUT: Duration = Duration::from_secs(15);

/// An exclusive advisory lock on a lock file (std's `File::lock`: flock on Unix), released when dropped. Each
/// guard opens its own descriptor, so it also excludes other threads of this process.
#[derive(Debug)]
pub(crate) struct Lock {
    _file: File,
}

impl Lock {
    /// Takes the lock at `path` (created if missing), waiting up to `timeout`.
    pub(crate) fn acquire(path: &Path, timeout: Duration) -> Result<Self, ClaudeCodeError> {
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options.open(path).map_err(ClaudeCodeError::io("cannot open lock file", path))?;
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(1);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Self { _file: file }),
                Err(fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(25));
                }
                Err(fs::TryLockError::WouldBlock) => {
                    return Err(ClaudeCodeError::Lock { path: path.to_path_buf(), timeout });
                }
                Err(fs::TryLockError::Error(e)) => return Err(ClaudeCodeError::io("cannot lock", path)(e)),
            }
        }
    }
}

/// A file's bytes, or `None` when it does not exist.
pub(crate) fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, ClaudeCodeError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ClaudeCodeError::io("cannot read", path)(e)),
    }
}

/// Creates `dir` and its parents where missing, with default permissions (as Claude Code creates `~/.claude`).
pub(crate) fn ensure_dir(dir: &Path) -> Result<(), ClaudeCodeError> {
    fs::create_dir_all(dir).map_err(ClaudeCodeError::io("cannot create directory", dir))
}

/// The file `path` names, following symlinks (a settings file linked from a dotfiles repository stays a link:
/// the target is replaced, not the link).
fn write_target(path: &Path) -> PathBuf {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()),
        _ => path.to_path_buf(),
    }
}

#[cfg(unix)]
fn mode_of(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).ok().map(|m| m.permissions().mode() & 0o7777)
}

/// Writes `bytes` to `path` atomically (temp file in the same directory, fsync, rename, fsync of the directory).
/// An existing file keeps its mode; a new one is 0600 (it may hold a gateway key).
pub(crate) fn replace_file(path: &Path, bytes: &[u8]) -> Result<(), ClaudeCodeError> {
    let target = write_target(path);
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    ensure_dir(&dir)?;
    let name = target.file_name().and_then(|n| n.to_str()).unwrap_or("settings.json");
    let tmp = dir.join(format!(".{name}.{}.llm-gateway.tmp", uuid::Uuid::new_v4().simple()));
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    let mode = mode_of(&target).unwrap_or(0o600);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    let result = (|| {
        let mut file = options.open(&tmp).map_err(ClaudeCodeError::io("cannot create", &tmp))?;
        // The umask may have taken bits away from the mode asked for: set it exactly.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(fs::Permissions::from_mode(mode))
                .map_err(ClaudeCodeError::io("cannot set the mode of", &tmp))?;
        }
        file.write_all(bytes).map_err(ClaudeCodeError::io("cannot write", &tmp))?;
        file.sync_all().map_err(ClaudeCodeError::io("cannot sync", &tmp))?;
        drop(file);
        fs::rename(&tmp, &target).map_err(ClaudeCodeError::io("cannot replace", &target))?;
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Removes `path` (a restore of a file that did not exist before setup); a missing file is fine.
pub(crate) fn remove_file(path: &Path) -> Result<(), ClaudeCodeError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ClaudeCodeError::io("cannot remove", path)(e)),
    }
}

/// Copies `bytes` (the file as it is before a change) to `<path>.llm-gateway-backup-<UTC time>` beside it, mode
/// 0600 (settings may hold keys). Returns the backup's path.
pub(crate) fn backup(path: &Path, bytes: &[u8]) -> Result<PathBuf, ClaudeCodeError> {
    let stamp = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!("[year][month][day]T[hour][minute][second]Z"))
        .unwrap_or_else(|_| "backup".into());
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("settings.json");
    let dir = path.parent().unwrap_or(Path::new("."));
    for n in 0..1000u32 {
        let suffix = if n == 0 { String::new() } else { format!("-{n}") };
        let candidate = dir.join(format!("{name}.llm-gateway-backup-{stamp}{suffix}"));
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        match options.open(&candidate) {
            Ok(mut file) => {
                file.write_all(bytes).map_err(ClaudeCodeError::io("cannot write backup", &candidate))?;
                file.sync_all().map_err(ClaudeCodeError::io("cannot sync backup", &candidate))?;
                return Ok(candidate);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(ClaudeCodeError::io("cannot create backup", &candidate)(e)),
        }
    }
    Err(ClaudeCodeError::Internal(format!("no free backup name beside {}", path.display())))
}

/// The lowercase hex SHA-256 of `bytes`.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn replacing_keeps_the_mode_and_writes_through_a_symlink() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("dotfiles-settings.json");
        fs::write(&real, "{}").unwrap();
        fs::set_permissions(&real, fs::Permissions::from_mode(0o640)).unwrap();
        let link = dir.path().join("settings.json");
        std::os::unix::fs::symlink(&real, &link).unwrap();

        replace_file(&link, b"{\"a\":1}").unwrap();

        assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link stays a link");
        assert_eq!(fs::read(&real).unwrap(), b"{\"a\":1}");
        assert_eq!(fs::metadata(&real).unwrap().permissions().mode() & 0o777, 0o640);
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[cfg(unix)]
    #[test]
    fn a_new_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new").join("settings.json");
        replace_file(&path, b"{}").unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn backups_never_overwrite_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        let a = backup(&path, b"one").unwrap();
        let b = backup(&path, b"two").unwrap();
        assert_ne!(a, b);
        assert_eq!(fs::read(&a).unwrap(), b"one");
        assert_eq!(fs::read(&b).unwrap(), b"two");
    }

    #[test]
    fn a_held_lock_times_out_with_a_lock_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let held = Lock::acquire(&path, LOCK_TIMEOUT).unwrap();
        let err = Lock::acquire(&path, Duration::from_millis(30)).unwrap_err();
        assert!(matches!(err, ClaudeCodeError::Lock { .. }), "{err}");
        drop(held);
        Lock::acquire(&path, Duration::from_millis(30)).unwrap();
    }
}
