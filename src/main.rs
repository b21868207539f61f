//! `llm-gateway`: the headless server and the management CLI. Thin: parses arguments, calls the library, prints.

mod claude_code_cli;
mod input;
mod output;
mod ui_cli;
mod usage_cli;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use llm_gateway::config::AccountClients;
use llm_gateway::config::default_config_path;
use llm_gateway::manage::Secret;
use llm_gateway::manage::{
    ClientKeyLimits, ErrorKind, NewApiKeyAccount, NewClientKey, NewOAuthAccount, Ops, ServerSync,
};

/// mimalloc instead of the system allocator: the proxy allocates and frees many small buffers per request, and
/// glibc's malloc showed up as ~15 % of its CPU per request (bench/results/profile-*.txt).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A local gateway in front of Anthropic's API.
#[derive(Debug, Parser)]
#[command(name = "llm-gateway", version, about)]
struct Cli {
    /// Config file (default: the platform config dir, e.g. ~/.config/llm-gateway/config.yaml).
    #[arg(long, global = true, env = "LLM_GATEWAY_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway until SIGINT/SIGTERM, then drain in-flight requests.
    Server {
        /// HOST:PORT to listen on (default: server.listen, 127.0.0.1:8787).
        #[arg(long, env = "LLM_GATEWAY_LISTEN")]
        listen: Option<String>,
    },
    /// Add an Anthropic API-key account; prints its id.
    ///
    /// The key is read from standard input: from a pipe (`printf '%s' "$KEY" | llm-gateway add-api-key --name
    /// work`), or at a prompt without echo on a terminal. --key is for scripts: arguments land in shell history and
    /// the process list.
    AddApiKey {
        /// The API key (sk-ant-…), for scripts; without it the key is read from standard input. Stored in the
        /// secret store only.
        #[arg(long, env = "LLM_GATEWAY_API_KEY", hide_env_values = true)]
        key: Option<String>,
        /// A unique name.
        #[arg(long)]
        name: String,
        /// Share of traffic under the weighted strategy.
        #[arg(long, default_value_t = 1)]
        weight: u32,
        /// Priority tier: lower numbers are preferred; higher tiers are used only when lower ones are unusable.
        #[arg(long, default_value_t = 0)]
        priority: u32,
        /// Comma-separated models this account serves (a trailing * matches a prefix); default all.
        #[arg(long, value_delimiter = ',')]
        models: Vec<String>,
        /// Upstream base URL for this account (default: upstream.base_url).
        #[arg(long)]
        base_url: Option<String>,
    },
    /// Add a Claude Pro/Max (Claude Code OAuth) account; prints its id. Log in with `oauth-start`.
    AddOauth {
        /// A unique name.
        #[arg(long)]
        name: String,
        /// OAuth client id (default: oauth.client_id, the Claude Code client).
        #[arg(long)]
        client_id: Option<String>,
        /// OAuth client secret, if the client has one (stored in the secret store). Prefer
        /// --client-secret-stdin: arguments land in shell history and the process list.
        #[arg(long, env = "LLM_GATEWAY_OAUTH_CLIENT_SECRET", hide_env_values = true)]
        client_secret: Option<String>,
        /// Read the OAuth client secret from standard input (a pipe, or a prompt without echo on a terminal).
        #[arg(long, conflicts_with = "client_secret")]
        client_secret_stdin: bool,
        /// Share of traffic under the weighted strategy.
        #[arg(long, default_value_t = 1)]
        weight: u32,
        /// Priority tier: lower numbers are preferred.
        #[arg(long, default_value_t = 0)]
        priority: u32,
        /// Comma-separated models this account serves; default all.
        #[arg(long, value_delimiter = ',')]
        models: Vec<String>,
        /// Which clients this subscription account serves: claude_code (default) or any. Anthropic's terms reserve
        /// subscription credentials for Claude Code and Anthropic's own apps; with `any`, other tools' requests
        /// through this account may be billed as extra usage or get the account suspended.
        #[arg(long, value_enum)]
        clients: Option<ClientsArg>,
    },
    /// Start an OAuth login: prints the authorize URL and opens the browser (unless --no-browser).
    OauthStart {
        /// Account id (or name).
        #[arg(long)]
        account_id: String,
        /// Only print the URL.
        #[arg(long)]
        no_browser: bool,
    },
    /// Complete an OAuth login with the code the browser showed (`code#state`) or the whole callback URL.
    OauthCallback {
        /// Account id (or name).
        #[arg(long)]
        account_id: String,
        /// `code#state`, or the callback URL.
        #[arg(long)]
        code: String,
    },
    /// List accounts with their state.
    ListAccounts {
        /// One JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Remove an account and its credential.
    RemoveAccount {
        /// Account id (or name).
        #[arg(long)]
        account_id: String,
    },
    /// Enable an account (also clears a credential error).
    EnableAccount {
        /// Account id (or name).
        #[arg(long)]
        account_id: String,
    },
    /// Disable an account.
    DisableAccount {
        /// Account id (or name).
        #[arg(long)]
        account_id: String,
    },
    /// Create a gateway key for clients; prints it once (only its hash is stored).
    AddClientKey {
        /// A unique name.
        #[arg(long)]
        name: String,
        /// Comma-separated models the key may use (a trailing * matches a prefix); default all.
        #[arg(long, value_delimiter = ',')]
        models: Vec<String>,
        /// Requests per minute.
        #[arg(long)]
        rpm: Option<u32>,
        /// Tokens (input, output, cache) per UTC day.
        #[arg(long)]
        tokens_per_day: Option<u64>,
        /// Estimated spend per UTC month, in US dollars.
        #[arg(long)]
        budget_usd_month: Option<f64>,
        /// Comma-separated accounts (ids or names) the key's requests may use; default all.
        #[arg(long, value_delimiter = ',')]
        accounts: Vec<String>,
        /// Comma-separated priority tiers the key's requests may use; default all.
        #[arg(long, value_delimiter = ',')]
        priority_tiers: Vec<u32>,
        /// Last day the key works (UTC), YYYY-MM-DD.
        #[arg(long)]
        expires: Option<String>,
    },
    /// List gateway keys (names and prefixes only).
    ListClientKeys {
        /// One JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Remove (revoke) a gateway key.
    RemoveClientKey {
        /// The key's name (or id).
        #[arg(long)]
        name: String,
    },
    /// Accounts with state and usage; asks the running server when there is one.
    Status {
        /// One JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Probe each account upstream; exit 0 only if at least one is usable.
    HealthCheck {
        /// One JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Print the running gateway's admin token (for `Authorization: Bearer` on the admin API).
    AdminToken,
    /// Print (and open) the web UI's address with a one-time sign-in code; needs a running gateway.
    Ui {
        /// Only print the address.
        #[arg(long)]
        no_browser: bool,
    },
    /// Usage and estimated cost over a time range, grouped; asks the running server when there is one, else reads
    /// the usage database.
    Usage(usage_cli::UsageArgs),
    /// The request log (latest requests; --follow keeps printing new ones).
    Requests(usage_cli::RequestsArgs),
    /// What Claude Code uses; point it at this gateway; undo that.
    ClaudeCode {
        #[command(subcommand)]
        command: claude_code_cli::ClaudeCodeCommand,
    },
}

/// `--clients` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ClientsArg {
    /// Claude Code only.
    ClaudeCode,
    /// Any client.
    Any,
}

impl From<ClientsArg> for AccountClients {
    fn from(c: ClientsArg) -> Self {
        match c {
            ClientsArg::ClaudeCode => AccountClients::ClaudeCode,
            ClientsArg::Any => AccountClients::Any,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let is_server = matches!(cli.command, Command::Server { .. });
    init_logging(is_server);
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            exit_code(&e)
        }
    }
}

/// The exit status for an error: each kind of operation error has its own (README "Exit status").
fn exit_code(e: &anyhow::Error) -> ExitCode {
    let Some(op) = e.downcast_ref::<llm_gateway::manage::Error>() else { return ExitCode::FAILURE };
    ExitCode::from(match op.kind {
        ErrorKind::InvalidInput => 2,
        ErrorKind::NotFound => 3,
        ErrorKind::Conflict => 4,
        ErrorKind::NeedsLogin => 5,
        ErrorKind::UpstreamUnavailable => 6,
        ErrorKind::NotRunning => 7,
        ErrorKind::Storage | ErrorKind::Internal => 1,
    })
}

fn init_logging(server: bool) {
    let default = if server { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")
}

/// How long a management command waits for a running server to apply the config change it made.
const SERVER_APPLY_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// After a command changed the config: when a server runs for it and has not applied the change within
/// [`SERVER_APPLY_WAIT`], says so on stderr (the change is saved; the server keeps retrying it).
async fn warn_unless_applied(ops: &Ops) {
    if let ServerSync::NotApplied { reason } = ops.wait_until_applied(SERVER_APPLY_WAIT).await {
        let why = reason.map(|r| format!(": {r}")).unwrap_or_default();
        eprintln!(
            "warning: the change is saved, but the running server has not applied it yet{why}. It keeps trying; \
             `llm-gateway status` shows when it has."
        );
    }
}

/// The server's runtime, sized by `server.worker_threads` (see `llm_gateway::server_runtime`).
fn server_runtime(config_path: &std::path::Path) -> Result<tokio::runtime::Runtime> {
    llm_gateway::server_runtime(config_path).context("cannot start the async runtime")
}

fn run(cli: Cli) -> Result<ExitCode> {
    let path = cli.config.unwrap_or_else(default_config_path);
    match cli.command {
        Command::Server { listen } => {
            server_runtime(&path)?.block_on(serve(path, listen))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::ClaudeCode { command } => claude_code_cli::run(&path, command),
        Command::AdminToken => {
            println!("{}", runtime()?.block_on(ui_cli::admin_token(&path))?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Ui { no_browser } => {
            println!("{}", runtime()?.block_on(ui_cli::ui(&path, no_browser))?);
            Ok(ExitCode::SUCCESS)
        }
        command => {
            // Keys read from a terminal are read before the runtime starts.
            let command = read_secrets(command)?;
            runtime()?.block_on(manage(Ops::offline(&path), command))
        }
    }
}

/// Reads the secrets a command takes from standard input, when it takes them from there.
fn read_secrets(command: Command) -> Result<Command> {
    Ok(match command {
        Command::AddApiKey { key: None, name, weight, priority, models, base_url } => {
            let hint = format!("printf '%s' \"$KEY\" | llm-gateway add-api-key --name {name}");
            let key = input::secret_from_stdin("API key", &hint)?.expose().to_string();
            Command::AddApiKey { key: Some(key), name, weight, priority, models, base_url }
        }
        Command::AddOauth { name, client_id, client_secret_stdin: true, weight, priority, models, clients, .. } => {
            let hint = format!("printf '%s' \"$SECRET\" | llm-gateway add-oauth --name {name} --client-secret-stdin");
            let secret = input::secret_from_stdin("OAuth client secret", &hint)?.expose().to_string();
            Command::AddOauth {
                name,
                client_id,
                client_secret: Some(secret),
                client_secret_stdin: false,
                weight,
                priority,
                models,
                clients,
            }
        }
        other => other,
    })
}

/// The management commands: one library operation each (the same ones the admin API runs).
async fn manage(ops: Ops, command: Command) -> Result<ExitCode> {
    match command {
        Command::AddApiKey { key, name, weight, priority, models, base_url } => {
            let key = Secret::new(key.unwrap_or_default());
            let account = ops.add_api_key(NewApiKeyAccount { key, name, weight, priority, models, base_url }).await?;
            println!("added API-key account `{}`", account.name);
            println!("{}", account.id);
            warn_unless_applied(&ops).await;
        }
        Command::AddOauth { name, client_id, client_secret, weight, priority, models, clients, .. } => {
            let new = NewOAuthAccount {
                name,
                client_id,
                client_secret: client_secret.map(Secret::new),
                weight,
                priority,
                models,
                clients: clients.map(AccountClients::from),
            };
            let account = ops.add_oauth(new).await?;
            eprintln!(
                "added OAuth account `{}`; log in with: llm-gateway oauth-start --account-id {}",
                account.name, account.id
            );
            eprintln!(
                "It serves Claude Code only (Anthropic's terms reserve subscription credentials for Claude Code and \
                 Anthropic's apps); `--clients any` lets other tools use it at the risk of extra-usage billing or \
                 suspension."
            );
            println!("{}", account.id);
            warn_unless_applied(&ops).await;
        }
        Command::OauthStart { account_id, no_browser } => {
            let login = ops.start_login(&account_id, None).await?;
            eprintln!("Open this URL, approve, then paste what the page shows (code#state):");
            eprintln!("  llm-gateway oauth-callback --account-id {account_id} --code 'CODE#STATE'");
            eprintln!("(With a loopback oauth.redirect_uri, the running gateway completes the login by itself.)");
            if !no_browser && let Err(e) = open::that_detached(&login.url) {
                eprintln!("could not open a browser ({e}); open the URL yourself");
            }
            println!("{}", login.url);
        }
        Command::OauthCallback { account_id, code } => {
            let outcome = ops.complete_login(Some(&account_id), &code).await?;
            match &outcome.email {
                Some(email) => println!("logged in as {email}"),
                None => println!("logged in"),
            }
            println!("{}", outcome.account_id);
            warn_unless_applied(&ops).await;
        }
        Command::ListAccounts { json } => output::accounts(&ops.status().await?, json)?,
        Command::RemoveAccount { account_id } => {
            let account = ops.remove_account(&account_id).await?;
            println!("removed account `{}` ({})", account.name, account.id);
            warn_unless_applied(&ops).await;
        }
        Command::EnableAccount { account_id } => {
            let account = ops.set_account_enabled(&account_id, true).await?;
            println!("enabled account `{}` ({})", account.name, account.id);
            warn_unless_applied(&ops).await;
        }
        Command::DisableAccount { account_id } => {
            let account = ops.set_account_enabled(&account_id, false).await?;
            println!("disabled account `{}` ({})", account.name, account.id);
            warn_unless_applied(&ops).await;
        }
        Command::AddClientKey {
            name,
            models,
            rpm,
            tokens_per_day,
            budget_usd_month,
            accounts,
            priority_tiers,
            expires,
        } => {
            let limits =
                ClientKeyLimits { models, rpm, tokens_per_day, budget_usd_month, accounts, priority_tiers, expires };
            let created = ops.create_client_key(NewClientKey { name, limits }).await?;
            println!(
                "created client key `{}` ({}); it is shown only now, store it safely:",
                created.client_key.name, created.id
            );
            println!("{}", created.key);
            warn_unless_applied(&ops).await;
        }
        Command::ListClientKeys { json } => output::client_keys(&ops.client_keys().await?, json)?,
        Command::RemoveClientKey { name } => {
            let key = ops.revoke_client_key(&name).await?;
            println!("removed client key `{}` ({})", key.name, key.id);
            warn_unless_applied(&ops).await;
        }
        Command::Status { json } => output::status(&ops.status().await?, json)?,
        Command::Usage(args) => usage_cli::usage(&ops, args).await?,
        Command::Requests(args) => usage_cli::requests(&ops, args).await?,
        Command::HealthCheck { json } => {
            let results = ops.health_check().await?;
            output::health(&results, json)?;
            if !results.iter().any(|r| r.usable) {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Server { .. } | Command::ClaudeCode { .. } | Command::AdminToken | Command::Ui { .. } => {
            unreachable!("handled by run")
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn serve(config_path: PathBuf, listen: Option<String>) -> Result<()> {
    // Each connection and each request upstream holds a descriptor; `start` warns if server.max_connections
    // still does not fit.
    if let Some(limit) = llm_gateway::raise_open_files_limit() {
        tracing::debug!(limit, "open-files limit");
    }
    let handle = llm_gateway::start(llm_gateway::StartOptions { config_path, listen, ..Default::default() }).await?;
    eprintln!("llm-gateway listening on http://{}", handle.addr());
    wait_for_signal().await;
    tracing::info!("shutting down: no new connections; waiting for in-flight requests");
    handle.shutdown().await;
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
