//! Claude Code's settings (`claude-code status|setup|restore`): the same operations for the CLI, the admin API
//! and the tray, over `crate::claude_code`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{Error, ErrorKind, Ops, Result, blocking};
use crate::claude_code::{self, ClaudeCodeError, ClaudeCodeStatus, Inputs, RestoreReport, SetupContext, SetupReport};

impl From<ClaudeCodeError> for Error {
    fn from(e: ClaudeCodeError) -> Self {
        let kind = match &e {
            ClaudeCodeError::InvalidSettings { .. } | ClaudeCodeError::InvalidRecord { .. } => ErrorKind::Conflict,
            ClaudeCodeError::Lock { .. } => ErrorKind::Conflict,
            ClaudeCodeError::NoDedicatedKey(_) => ErrorKind::NotFound,
            ClaudeCodeError::Io { .. } | ClaudeCodeError::Secrets(_) => ErrorKind::Storage,
            ClaudeCodeError::Config(_) => ErrorKind::Storage,
            ClaudeCodeError::Internal(_) => ErrorKind::Internal,
        };
        Error::new(kind, e.to_string())
    }
}

/// The environment Claude Code would start in: this process's.
fn process_env() -> BTreeMap<String, String> {
    std::env::vars().collect()
}

impl Ops {
    async fn claude_code_inputs(&self, project: Option<PathBuf>) -> Result<Inputs> {
        let file = self.config_file().clone();
        let mut inputs = blocking(move || Ok(Inputs::for_config(&file, project, process_env())?)).await?;
        if let Some(gateway) = self.gateway() {
            // The running gateway knows its own address better than runtime.json or the config.
            inputs.gateway_url = crate::config::connect_url(gateway.listen());
        }
        Ok(inputs)
    }

    /// What Claude Code would use now (base URL, credential source) and why, with conflicts explained.
    /// `project` adds a project directory's `.claude/` settings.
    pub async fn claude_code_status(&self, project: Option<PathBuf>) -> Result<ClaudeCodeStatus> {
        let inputs = self.claude_code_inputs(project).await?;
        Ok(claude_code::status_async(inputs).await?)
    }

    /// Points Claude Code's user settings at this gateway (only the keys that are needed; restorable).
    /// `helper_program` is the `llm-gateway` binary its `apiKeyHelper` runs (`None`: this executable).
    pub async fn claude_code_setup(&self, helper_program: Option<PathBuf>) -> Result<SetupReport> {
        let inputs = self.claude_code_inputs(None).await?;
        let helper_program = match helper_program {
            Some(path) => path,
            None => std::env::current_exe()
                .map_err(|e| Error::internal(format!("cannot find this program's path for apiKeyHelper: {e}")))?,
        };
        let ctx =
            SetupContext { config: self.config_file().clone(), secrets: Some(self.secrets().await?), helper_program };
        let report = claude_code::setup_async(inputs, ctx).await?;
        // Setup may have created the dedicated key: put it in force before Claude Code's first request.
        self.apply().await?;
        Ok(report)
    }

    /// Puts back exactly the keys setup changed (a key the user changed since is left alone and reported).
    pub async fn claude_code_restore(&self) -> Result<RestoreReport> {
        let inputs = self.claude_code_inputs(None).await?;
        Ok(claude_code::restore_async(inputs).await?)
    }
}
