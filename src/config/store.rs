//! Loading and saving the config file: defaults for a missing file, clear parse errors, atomic 0600 saves, and a
//! cross-process lock so two CLI commands (or the CLI and the server) never lose each other's changes.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{Config, validate};

/// Why the configuration could not be read, validated or written.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A filesystem operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The YAML could not be parsed into the config model.
    #[error("{path}: {message}")]
    Parse {
        /// The file involved.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A value is present but not acceptable.
    #[error("config key `{key}`: {message}")]
    Invalid {
        /// The key path, e.g. `accounts[1].weight`.
        key: String,
        /// What is wrong and what is expected.
        message: String,
    },
    /// A management operation was refused (unknown id, duplicate name, …).
    #[error("{0}")]
    Rejected(String),
    /// The config could not be serialised.
    #[error("cannot serialise the configuration: {0}")]
    Serialize(String),
}

impl ConfigError {
    pub(crate) fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid { key: key.into(), message: message.into() }
    }
}

/// The default config path: the platform config dir, e.g. `~/.config/llm-gateway/config.yaml`.
pub fn default_config_path() -> PathBuf {
    dirs::config_dir().unwrap_or_else(|| PathBuf::from(".")).join("llm-gateway").join("config.yaml")
}

/// Applies `LLM_GATEWAY_LISTEN` and `LLM_GATEWAY_UPSTREAM_URL` to a loaded config (never saved back).
pub fn env_overrides(config: &mut Config) {
    if let Ok(listen) = std::env::var("LLM_GATEWAY_LISTEN")
        && !listen.trim().is_empty()
    {
        config.server.listen = listen.trim().to_string();
    }
    if let Ok(url) = std::env::var("LLM_GATEWAY_UPSTREAM_URL")
        && !url.trim().is_empty()
    {
        config.upstream.base_url = url.trim().to_string();
    }
    if let Ok(threads) = std::env::var("LLM_GATEWAY_WORKER_THREADS")
        && let Ok(threads) = threads.trim().parse()
    {
        config.server.worker_threads = threads;
    }
}

/// A config file on disk and the state directory around it.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    path: PathBuf,
}

impl ConfigFile {
    /// Names the config file at `path` (nothing is read yet).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The config file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory holding the config file and the gateway's other state (secrets, admin token).
    pub fn dir(&self) -> PathBuf {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    /// Parses and validates config text.
    pub fn parse(&self, text: &str) -> Result<Config, ConfigError> {
        let config: Config = if text.trim().is_empty() {
            Config::default()
        } else {
            serde_saphyr::from_str(text)
                .map_err(|e| ConfigError::Parse { path: self.path.clone(), message: e.to_string() })?
        };
        validate(&config)?;
        Ok(config)
    }

    /// Reads the file; a missing file is created with defaults.
    pub fn load(&self) -> Result<Config, ConfigError> {
        match fs::read_to_string(&self.path) {
            Ok(text) => self.parse(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let _lock = self.lock()?;
                // Another process may have created it while we waited for the lock.
                match fs::read_to_string(&self.path) {
                    Ok(text) => self.parse(&text),
                    Err(_) => {
                        let config = Config::default();
                        self.write(&config)?;
                        Ok(config)
                    }
                }
            }
            Err(source) => Err(ConfigError::Io { action: "cannot read", path: self.path.clone(), source }),
        }
    }

    /// Reads, changes and saves the config under the cross-process lock; the change is validated before saving.
    pub fn update<T>(&self, change: impl FnOnce(&mut Config) -> Result<T, ConfigError>) -> Result<T, ConfigError> {
        let _lock = self.lock()?;
        let mut config = match fs::read_to_string(&self.path) {
            Ok(text) => self.parse(&text)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Config::default(),
            Err(source) => return Err(ConfigError::Io { action: "cannot read", path: self.path.clone(), source }),
        };
        let out = change(&mut config)?;
        validate(&config)?;
        self.write(&config)?;
        Ok(out)
    }

    fn lock(&self) -> Result<FileLock, ConfigError> {
        let dir = self.dir();
        create_private_dir(&dir)?;
        let lock_path = dir.join(".config.lock");
        FileLock::acquire(&lock_path)
    }

    /// Writes atomically: a 0600 temp file in the same directory, fsync, rename over the target.
    fn write(&self, config: &Config) -> Result<(), ConfigError> {
        let text = serde_saphyr::to_string(config).map_err(|e| ConfigError::Serialize(e.to_string()))?;
        let header = "# LLM Gateway configuration. Written by `llm-gateway`; see configs/config.yaml for every key.\n";
        write_atomic(&self.path, format!("{header}{text}").as_bytes())
    }
}

/// Creates `dir` (and parents) with 0700 permissions where it does not exist.
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), ConfigError> {
    if dir.exists() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|source| ConfigError::Io {
        action: "cannot create directory",
        path: dir.to_path_buf(),
        source,
    })
}

/// Writes `bytes` to `path` atomically (temp file, fsync, rename) with mode 0600.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ConfigError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    create_private_dir(&dir)?;
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("config");
    let tmp = dir.join(format!(".{file_name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let io = |action: &'static str, p: &Path| {
        let p = p.to_path_buf();
        move |source| ConfigError::Io { action, path: p, source }
    };
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let result = (|| {
        let mut file = options.open(&tmp).map_err(io("cannot create", &tmp))?;
        file.write_all(bytes).map_err(io("cannot write", &tmp))?;
        file.sync_all().map_err(io("cannot sync", &tmp))?;
        fs::rename(&tmp, path).map_err(io("cannot replace", path))?;
        // Make the rename itself durable.
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

/// An exclusive advisory lock on a file (std's `File::lock`, flock on Unix), released when dropped.
pub(crate) struct FileLock {
    _file: File,
}

impl FileLock {
    pub(crate) fn acquire(path: &Path) -> Result<Self, ConfigError> {
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options.open(path).map_err(|source| ConfigError::Io {
            action: "cannot open lock file",
            path: path.to_path_buf(),
            source,
        })?;
        file.lock().map_err(|source| ConfigError::Io { action: "cannot lock", path: path.to_path_buf(), source })?;
        Ok(Self { _file: file })
    }
}
