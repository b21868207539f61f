//! Test harness: a gateway started in-process against the mock upstream, in a temporary config directory.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use llm_gateway::config::ConfigFile;
use llm_gateway::manage::{NewApiKeyAccount, NewClientKey, NewOAuthAccount, Ops};
use llm_gateway::secrets::{BackendKind, FileStore, Secret, SecretError, SecretStore};
use llm_gateway::{GatewayHandle, StartOptions};
use mock_upstream::MockUpstream;

/// A running gateway with its mock upstream and config directory.
pub struct Harness {
    pub mock: MockUpstream,
    pub gateway: Option<GatewayHandle>,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub url: String,
    pub http: reqwest::Client,
    /// The gateway's secret store when the harness injected a [`TestStore`].
    pub store: Option<Arc<TestStore>>,
}

/// The encrypted file store of a test's config directory with faults on demand: reads that fail or stall
/// (a keychain timing out), and a count of reads.
#[derive(Debug)]
pub struct TestStore {
    inner: FileStore,
    gets: AtomicUsize,
    failing_gets: AtomicU32,
    get_delay_ms: AtomicU64,
}

impl TestStore {
    pub fn open(dir: &std::path::Path) -> Arc<TestStore> {
        Arc::new(TestStore {
            inner: FileStore::open(dir).expect("file store"),
            gets: AtomicUsize::new(0),
            failing_gets: AtomicU32::new(0),
            get_delay_ms: AtomicU64::new(0),
        })
    }

    /// Reads so far.
    pub fn gets(&self) -> usize {
        self.gets.load(Ordering::SeqCst)
    }

    /// The next `n` reads fail as a keychain that does not answer would.
    pub fn fail_next_gets(&self, n: u32) {
        self.failing_gets.store(n, Ordering::SeqCst);
    }

    /// Every read takes this long (blocking the calling thread, as a keychain call does).
    pub fn delay_gets(&self, delay: Duration) {
        self.get_delay_ms.store(u64::try_from(delay.as_millis()).unwrap(), Ordering::SeqCst);
    }
}

impl SecretStore for TestStore {
    fn get(&self, id: &str) -> Result<Option<Secret>, SecretError> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        let delay = self.get_delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            std::thread::sleep(Duration::from_millis(delay));
        }
        if self.failing_gets.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            return Err(SecretError::Io {
                path: "keychain".into(),
                source: std::io::Error::new(std::io::ErrorKind::TimedOut, "the keychain did not answer (test)"),
            });
        }
        self.inner.get(id)
    }

    fn set(&self, id: &str, value: &Secret) -> Result<(), SecretError> {
        self.inner.set(id, value)
    }

    fn delete(&self, id: &str) -> Result<(), SecretError> {
        self.inner.delete(id)
    }

    fn backend(&self) -> BackendKind {
        self.inner.backend()
    }
}

pub const GOOD_KEY: &str = "sk-ant-api03-good-primary";

/// Writes a config for the mock; `extra` is appended YAML (top-level keys other than server/upstream/secrets).
pub fn write_config(dir: &std::path::Path, mock_url: &str, server_extra: &str, upstream_extra: &str) -> PathBuf {
    let path = dir.join("config.yaml");
    let text = format!(
        "server:\n  listen: 127.0.0.1:0\n{server_extra}upstream:\n  base_url: {mock_url}\n{upstream_extra}secrets:\n  backend: file\n"
    );
    std::fs::write(&path, text).expect("write test config");
    path
}

/// The library's management operations on a config file, offline (as the CLI runs them), callable from sync
/// setup code and from async tests alike: each call runs on a thread of its own with its own runtime.
pub struct TestManager {
    ops: Ops,
}

pub fn manager(path: &std::path::Path) -> TestManager {
    TestManager { ops: Ops::offline_file(ConfigFile::new(path)) }
}

/// Runs `work` on its own thread and runtime (so it may be called inside a running runtime).
pub fn run_blocking<T: Send + 'static>(work: impl std::future::Future<Output = T> + Send + 'static) -> T {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(work)
    })
    .join()
    .expect("operation thread")
}

type OpResult<T> = Result<T, llm_gateway::manage::Error>;

impl TestManager {
    pub fn ops(&self) -> Ops {
        self.ops.clone()
    }

    pub fn add_api_key(&self, new: NewApiKeyAccount) -> OpResult<llm_gateway::accounts::AccountView> {
        let ops = self.ops.clone();
        run_blocking(async move { ops.add_api_key(new).await })
    }

    pub fn add_oauth(&self, new: NewOAuthAccount) -> OpResult<llm_gateway::accounts::AccountView> {
        let ops = self.ops.clone();
        run_blocking(async move { ops.add_oauth(new).await })
    }

    /// Creates a general-purpose client key; returns the key.
    pub fn add_client_key(&self, name: &str) -> OpResult<String> {
        let (ops, name) = (self.ops.clone(), name.to_string());
        run_blocking(async move { ops.create_client_key(NewClientKey { name, ..Default::default() }).await })
            .map(|created| created.key)
    }

    /// Revokes a client key by name or id.
    pub fn revoke_client_key(&self, id_or_name: &str) -> OpResult<llm_gateway::manage::ClientKeyView> {
        let (ops, id) = (self.ops.clone(), id_or_name.to_string());
        run_blocking(async move { ops.revoke_client_key(&id).await })
    }

    pub fn set_enabled(&self, id: &str, enabled: bool) -> OpResult<llm_gateway::accounts::AccountView> {
        let (ops, id) = (self.ops.clone(), id.to_string());
        run_blocking(async move { ops.set_account_enabled(&id, enabled).await })
    }

    pub fn remove_account(&self, id: &str) -> OpResult<llm_gateway::accounts::AccountView> {
        let (ops, id) = (self.ops.clone(), id.to_string());
        run_blocking(async move { ops.remove_account(&id).await })
    }

    /// Starts a login; returns the authorize URL.
    pub fn oauth_start(&self, id: &str) -> OpResult<String> {
        let (ops, id) = (self.ops.clone(), id.to_string());
        run_blocking(async move { ops.start_login(&id, None).await }).map(|l| l.url)
    }

    pub async fn oauth_complete(
        &self,
        id: Option<&str>,
        code: &str,
        _http: &reqwest::Client,
    ) -> OpResult<llm_gateway::upstream::oauth::LoginOutcome> {
        self.ops.complete_login(id, code).await
    }

    pub fn secrets(&self) -> OpResult<std::sync::Arc<dyn llm_gateway::secrets::SecretStore>> {
        let ops = self.ops.clone();
        run_blocking(async move { ops.secrets().await })
    }
}

/// Creates a client key with the limits `limits` sets (offline, as the CLI does); returns the key.
pub fn create_key(
    path: &std::path::Path,
    name: &str,
    limits: impl FnOnce(&mut llm_gateway::manage::ClientKeyLimits),
) -> String {
    let mut l = llm_gateway::manage::ClientKeyLimits::default();
    limits(&mut l);
    let (ops, name) = (manager(path).ops(), name.to_string());
    run_blocking(async move { ops.create_client_key(NewClientKey { name, limits: l }).await }).expect("create key").key
}

/// Changes the config file directly (before or while the gateway runs).
pub fn edit_config(path: &std::path::Path, change: impl FnOnce(&mut llm_gateway::config::Config)) {
    ConfigFile::new(path)
        .update(|c| {
            change(c);
            Ok(())
        })
        .expect("config update");
}

/// Adds an account with its own base URL (another mock) and priority.
pub fn add_account_at(
    path: &std::path::Path,
    name: &str,
    key: &str,
    base_url: Option<String>,
    priority: u32,
) -> String {
    manager(path)
        .add_api_key(NewApiKeyAccount {
            key: Secret::new(key),
            name: name.into(),
            weight: 1,
            priority,
            models: vec![],
            base_url,
        })
        .expect("add account")
        .id
}

/// Adds a subscription (OAuth) account `name` that has not logged in yet, serving `clients`; its id.
pub fn add_oauth_account(
    path: &std::path::Path,
    name: &str,
    clients: Option<llm_gateway::config::AccountClients>,
) -> String {
    manager(path)
        .add_oauth(NewOAuthAccount {
            name: name.into(),
            client_id: None,
            client_secret: None,
            weight: 1,
            priority: 0,
            models: vec![],
            clients,
        })
        .expect("add OAuth account")
        .id
}

/// Points the config's OAuth authorize and token endpoints at the mock upstream (its `upstream.base_url`).
pub fn oauth_at_mock(config: &mut llm_gateway::config::Config) {
    let base = config.upstream.base_url.clone();
    config.oauth.token_url = format!("{base}/v1/oauth/token");
    config.oauth.authorize_url = format!("{base}/oauth/authorize");
}

pub fn add_account(path: &std::path::Path, name: &str, key: &str, models: &[&str]) -> String {
    manager(path)
        .add_api_key(NewApiKeyAccount {
            key: Secret::new(key),
            name: name.into(),
            weight: 1,
            priority: 0,
            models: models.iter().map(|m| m.to_string()).collect(),
            base_url: None,
        })
        .expect("add account")
        .id
}

impl Harness {
    /// Mock + gateway with one good account.
    pub async fn start() -> Self {
        Self::with(|path| {
            add_account(path, "primary", GOOD_KEY, &[]);
        })
        .await
    }

    /// Mock + gateway; `setup` prepares the config directory before the gateway starts.
    pub async fn with(setup: impl FnOnce(&std::path::Path)) -> Self {
        Self::with_config("", "", setup).await
    }

    pub async fn with_config(server_extra: &str, upstream_extra: &str, setup: impl FnOnce(&std::path::Path)) -> Self {
        Self::with_clock(server_extra, upstream_extra, None, setup).await
    }

    pub async fn with_clock(
        server_extra: &str,
        upstream_extra: &str,
        clock: Option<std::sync::Arc<dyn llm_gateway::clock::Clock>>,
        setup: impl FnOnce(&std::path::Path),
    ) -> Self {
        Self::launch(server_extra, upstream_extra, clock, false, setup).await
    }

    /// Mock + gateway whose secret store is a [`TestStore`] (in `h.store`), for fault injection.
    pub async fn with_test_store(setup: impl FnOnce(&std::path::Path)) -> Self {
        Self::launch("", "", None, true, setup).await
    }

    async fn launch(
        server_extra: &str,
        upstream_extra: &str,
        clock: Option<std::sync::Arc<dyn llm_gateway::clock::Clock>>,
        test_store: bool,
        setup: impl FnOnce(&std::path::Path),
    ) -> Self {
        let mock = MockUpstream::start().await.expect("mock upstream");
        let dir = tempfile::tempdir().expect("tempdir");
        let config_path = write_config(dir.path(), &mock.base_url(), server_extra, upstream_extra);
        setup(&config_path);
        let store = test_store.then(|| TestStore::open(dir.path()));
        let secrets = store.clone().map(|s| s as Arc<dyn SecretStore>);
        let options = StartOptions { config_path: config_path.clone(), clock, secrets, ..Default::default() };
        let gateway = llm_gateway::start(options).await.expect("gateway starts");
        let url = format!("http://{}", gateway.addr());
        let http = reqwest::Client::builder().build().expect("client");
        Self { mock, gateway: Some(gateway), dir, config_path, url, http, store }
    }

    /// The admin token from `runtime.json`.
    pub fn admin_token(&self) -> String {
        let info: serde_json::Value =
            serde_json::from_slice(&std::fs::read(self.dir.path().join("runtime.json")).expect("runtime.json"))
                .expect("runtime json");
        info["admin_token"].as_str().expect("token").to_string()
    }

    pub fn manager(&self) -> TestManager {
        manager(&self.config_path)
    }

    /// POST /v1/messages with a small valid body.
    pub async fn message(&self, extra_headers: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self
            .http
            .post(format!("{}/v1/messages", self.url))
            .header("content-type", "application/json")
            .header("anthropic-version", "2023-06-01")
            .body(simple_body(false));
        for (k, v) in extra_headers {
            request = request.header(*k, *v);
        }
        request.send().await.expect("request reaches the gateway")
    }

    /// Polls `check` until it holds (hot reload takes up to ~1 s).
    pub async fn eventually<F, Fut>(&self, what: &str, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while tokio::time::Instant::now() < deadline {
            if check().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("timed out waiting for: {what}");
    }

    pub async fn status_json(&self) -> serde_json::Value {
        let token = self.admin_token();
        self.http
            .get(format!("{}/admin/api/v1/status", self.url))
            .bearer_auth(token)
            .send()
            .await
            .expect("status")
            .json()
            .await
            .expect("status json")
    }

    pub async fn shutdown(mut self) {
        if let Some(g) = self.gateway.take() {
            g.shutdown().await;
        }
    }
}

pub fn simple_body(stream: bool) -> String {
    format!(
        r#"{{"model":"claude-sonnet-5","max_tokens":64,"stream":{stream},"messages":[{{"role":"user","content":"hi"}}]}}"#
    )
}

/// Asserts an Anthropic error body of `kind` and returns its message.
pub async fn error_of(response: reqwest::Response, status: u16, kind: &str) -> String {
    assert_eq!(response.status().as_u16(), status);
    let body: serde_json::Value = response.json().await.expect("error body is JSON");
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["error"]["type"], kind, "{body}");
    assert!(body["request_id"].is_string(), "{body}");
    body["error"]["message"].as_str().expect("message").to_string()
}
