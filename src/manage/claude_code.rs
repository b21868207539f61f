//! Claude Code's settings (`claude-code status|setup|restore`): the same operations for the CLI, the admin API
//! and the tray, over `crate::claude_code`.

use std::path::PathBuf;

use super::{Error, ErrorKind, Ops, Result, blocking};
use crate::claude_code::{
    self, ClaudeCodeError, ClaudeCodeStatus, Environment, Inputs, RestoreReport, SetupContext, SetupReport,
};

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

impl Ops {
    /// These operations with Claude Code looking at `env` instead of this process's environment (a temporary home
    /// in tests; the user's environment for the desktop app). Bound to a gateway, the gateway's
    /// `StartOptions::claude_code_env` is used unless this replaces it.
    pub fn with_claude_code_env(self, env: Environment) -> Self {
        self.replace_claude_code_env(Some(env))
    }

    async fn claude_code_inputs(&self, project: Option<PathBuf>) -> Result<Inputs> {
        let file = self.config_file().clone();
        let env = self.claude_code_env().cloned();
        let mut inputs = blocking(move || {
            let env = env.unwrap_or_else(Environment::of_process);
            let mut inputs = Inputs::for_config(&file, project, env.vars)?;
            inputs.managed_dir = env.managed_dir;
            Ok(inputs)
        })
        .await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_given_environment_is_what_claude_code_is_looked_at_in() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let settings = home.join(".claude").join("settings.json");
        std::fs::create_dir_all(settings.parent().unwrap()).unwrap();
        std::fs::write(&settings, r#"{"env": {"ANTHROPIC_BASE_URL": "https://elsewhere.example"}}"#).unwrap();
        let env = Environment {
            vars: [("HOME".to_string(), home.display().to_string())].into_iter().collect(),
            managed_dir: None,
        };
        let ops = Ops::offline(dir.path().join("config.yaml")).with_claude_code_env(env);

        let status = ops.claude_code_status(None).await.unwrap();

        let base_url = status.base_url.expect("the settings file in the given home was read");
        assert_eq!(base_url.shown, "https://elsewhere.example");
        assert_eq!(base_url.source.path.as_deref(), Some(settings.as_path()));
    }
}
