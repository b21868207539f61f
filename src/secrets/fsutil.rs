//! File-system helpers for secret files: owner-only permissions, atomic
//! replacement, and an advisory lock shared between processes.

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::SecretError;
use super::crypto::random_bytes;

/// How long a writer waits for another process's read-modify-write. Holders
/// only keep the lock for one small file rewrite, so this is generous.
pub(crate) const LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// Creates `dir` (and parents) if missing; new directories are owner-only
/// because they will hold key material.
pub(crate) fn ensure_dir(dir: &Path) -> Result<(), SecretError> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|e| SecretError::io(dir, e))
}

fn private_options() -> OpenOptions {
    let mut opts = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    opts
}

/// Forces mode 0600 even if the file pre-existed or the umask interfered.
pub(crate) fn restrict_permissions(file: &File, path: &Path) -> Result<(), SecretError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(fs::Permissions::from_mode(0o600)).map_err(|e| SecretError::io(path, e))?;
    }
    #[cfg(not(unix))]
    let _ = (file, path);
    Ok(())
}

/// Writes `bytes` to `path` so that readers see either the old or the new
/// content, never a torn file: temp file (0600) in the same directory, fsync,
/// rename, then fsync of the directory so the rename survives a crash.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), SecretError> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "secrets".into());
    let suffix = u64::from_le_bytes(random_bytes::<8>()?);
    let tmp = dir.join(format!(".{name}.{}.{suffix:016x}.tmp", std::process::id()));

    let result = (|| {
        let mut file =
            private_options().write(true).create_new(true).open(&tmp).map_err(|e| SecretError::io(&tmp, e))?;
        restrict_permissions(&file, &tmp)?;
        file.write_all(bytes).map_err(|e| SecretError::io(&tmp, e))?;
        file.sync_all().map_err(|e| SecretError::io(&tmp, e))?;
        drop(file);
        fs::rename(&tmp, path).map_err(|e| SecretError::io(path, e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
        return result;
    }
    sync_dir(dir);
    Ok(())
}

#[cfg(unix)]
fn sync_dir(dir: &Path) {
    // Best effort: the data is already safely in place for every reader; this
    // only makes the rename durable across a power loss.
    if let Err(e) = File::open(dir).and_then(|d| d.sync_all()) {
        tracing::debug!(dir = %dir.display(), error = %e, "could not fsync directory");
    }
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) {}

/// An exclusive advisory lock on a lock file; released when dropped (the
/// descriptor closes). Each guard opens its own descriptor, so the lock also
/// excludes other threads of this process, not only other processes.
#[derive(Debug)]
pub(crate) struct FileLock {
    _file: File,
}

impl FileLock {
    /// Takes the lock, polling so that a stuck holder becomes an error after
    /// `timeout` instead of hanging the caller forever.
    pub(crate) fn acquire(path: &Path, timeout: Duration) -> Result<FileLock, SecretError> {
        let file = private_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| SecretError::io(path, e))?;
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(1);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(FileLock { _file: file }),
                Err(fs::TryLockError::WouldBlock) => {
                    if Instant::now() >= deadline {
                        return Err(SecretError::LockTimeout { path: PathBuf::from(path), timeout });
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                Err(fs::TryLockError::Error(e)) => return Err(SecretError::io(path, e)),
            }
        }
    }
}

/// Reads a file, mapping "not found" to `None`.
pub(crate) fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, SecretError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(SecretError::io(path, e)),
    }
}

/// Warns when a key file is readable by others: we don't refuse (the user
/// may have reasons), but they should know.
pub(crate) fn warn_if_exposed(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(meta) = fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                path = %path.display(),
                mode = format!("{:o}", meta.permissions().mode() & 0o777),
                "key file is accessible by other users; run chmod 600 on it"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_excludes_second_holder_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let first = FileLock::acquire(&path, Duration::from_secs(1)).unwrap();
        let err = FileLock::acquire(&path, Duration::from_millis(50)).unwrap_err();
        assert!(matches!(err, SecretError::LockTimeout { .. }), "{err}");
        drop(first);
        FileLock::acquire(&path, Duration::from_millis(50)).unwrap();
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("f")]);
    }
}
