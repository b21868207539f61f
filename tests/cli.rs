//! The `llm-gateway` binary as scripts and users call it (design.md §3).

mod common;

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use mock_upstream::MockUpstream;

const BIN: &str = env!("CARGO_BIN_EXE_llm-gateway");

fn run(config: &std::path::Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("LLM_GATEWAY_MASTER_KEY")
        .env_remove("LLM_GATEWAY_LISTEN")
        .env_remove("LLM_GATEWAY_UPSTREAM_URL")
        .output()
        .expect("binary runs")
}

fn ok(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {stdout}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn last_line(stdout: &str) -> String {
    stdout.lines().last().unwrap_or_default().trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_commands_manage_accounts_and_print_ids() {
    let mock = MockUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(dir.path(), &mock.base_url(), "", "");

    let out = ok(&run(
        &config,
        &[
            "add-api-key",
            "--key",
            "sk-ant-api03-secret-value",
            "--name",
            "main",
            "--weight",
            "3",
            "--models",
            "claude-opus-*,claude-sonnet-5",
        ],
    ));
    let id = last_line(&out);
    assert!(id.starts_with("acc_"), "{out}");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(!text.contains("sk-ant-api03-secret-value"), "key must not be in the config: {text}");

    let listed: serde_json::Value = serde_json::from_str(&ok(&run(&config, &["list-accounts", "--json"]))).unwrap();
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["name"], "main");
    assert_eq!(listed[0]["weight"], 3);
    assert_eq!(listed[0]["models"], serde_json::json!(["claude-opus-*", "claude-sonnet-5"]));
    assert_eq!(listed[0]["state"], "active");

    ok(&run(&config, &["disable-account", "--account-id", &id]));
    let listed: serde_json::Value = serde_json::from_str(&ok(&run(&config, &["list-accounts", "--json"]))).unwrap();
    assert_eq!(listed[0]["state"], "disabled");
    ok(&run(&config, &["enable-account", "--account-id", &id]));

    let dup = run(&config, &["add-api-key", "--key", "sk-ant-x", "--name", "main"]);
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already exists"));

    let missing = run(&config, &["remove-account", "--account-id", "acc_nope"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("acc_nope"));

    ok(&run(&config, &["remove-account", "--account-id", &id]));
    let listed: serde_json::Value = serde_json::from_str(&ok(&run(&config, &["list-accounts", "--json"]))).unwrap();
    assert_eq!(listed, serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_key_commands_print_the_key_once_and_store_a_hash() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("fresh").join("config.yaml");
    let out = ok(&run(&config, &["add-client-key", "--name", "ide"]));
    let key = last_line(&out);
    assert!(key.starts_with("lgw-"), "{out}");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(!text.contains(&key));
    let listed: serde_json::Value = serde_json::from_str(&ok(&run(&config, &["list-client-keys", "--json"]))).unwrap();
    assert_eq!(listed[0]["name"], "ide");
    assert!(!listed.to_string().contains(&key));
    ok(&run(&config, &["remove-client-key", "--name", "ide"]));
    let listed: serde_json::Value = serde_json::from_str(&ok(&run(&config, &["list-client-keys", "--json"]))).unwrap();
    assert_eq!(listed, serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_check_exits_zero_only_with_a_usable_account() {
    let mock = MockUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(dir.path(), &mock.base_url(), "", "");
    ok(&run(&config, &["add-api-key", "--key", "sk-ant-invalid-key", "--name", "bad"]));
    let out = run(&config, &["health-check", "--json"]);
    assert!(!out.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["usable"], false);
    assert_eq!(doc["accounts"][0]["status"], 401);
    assert!(doc["accounts"][0]["detail"].as_str().unwrap().contains("invalid x-api-key"));

    ok(&run(&config, &["add-api-key", "--key", "sk-ant-good", "--name", "good"]));
    let doc: serde_json::Value = serde_json::from_str(&ok(&run(&config, &["health-check", "--json"]))).unwrap();
    assert_eq!(doc["usable"], true);
    let probe = mock.requests().into_iter().find(|r| r.header("x-api-key") == Some("sk-ant-good")).unwrap();
    assert_eq!(probe.path, "/v1/models");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_runs_reports_status_and_drains_on_sigterm() {
    let mock = MockUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(dir.path(), &mock.base_url(), "", "");
    ok(&run(&config, &["add-api-key", "--key", "sk-ant-good", "--name", "main"]));

    let status: serde_json::Value = serde_json::from_str(&ok(&run(&config, &["status", "--json"]))).unwrap();
    assert_eq!(status["source"], "config");

    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let listen = format!("127.0.0.1:{port}");
    let server = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .args(["server", "--listen", &listen])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let url = format!("http://{listen}");
    let http = reqwest::Client::new();
    let mut up = false;
    for _ in 0..100 {
        if http.get(format!("{url}/health")).send().await.is_ok_and(|r| r.status() == 200) {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "server did not come up");
    let response = http.post(format!("{url}/v1/messages")).body(common::simple_body(false)).send().await.unwrap();
    assert_eq!(response.status(), 200);

    let status: serde_json::Value = serde_json::from_str(&ok(&run(&config, &["status", "--json"]))).unwrap();
    assert_eq!(status["source"], "server");
    assert_eq!(status["accounts"][0]["requests"], 1);
    let text = ok(&run(&config, &["status"]));
    assert!(text.contains("running on"), "{text}");

    // SIGTERM: the server drains and exits 0.
    let pid = server.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let exit = tokio::task::spawn_blocking(move || server.wait_with_output()).await.unwrap().unwrap();
    let stderr = String::from_utf8_lossy(&exit.stderr);
    assert!(exit.status.success(), "{stderr}");
    assert!(stderr.contains("request_id="), "one log line per request: {stderr}");
    assert!(!stderr.contains("sk-ant-good"), "secret in logs: {stderr}");
    assert!(!dir.path().join("runtime.json").exists(), "runtime.json removed on exit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_refuses_a_public_listen_without_client_keys() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(dir.path(), "http://127.0.0.1:9", "", "");
    let out = run(&config, &["server", "--listen", "0.0.0.0:0"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("add-client-key"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_config_is_reported_with_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, "routing:\n  strategy: fastest\n").unwrap();
    let out = run(&config, &["list-accounts"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("strategy"), "{stderr}");
    std::fs::write(&config, "server:\n  listen: nowhere\n").unwrap();
    let stderr = String::from_utf8_lossy(&run(&config, &["list-accounts"]).stderr).to_string();
    assert!(stderr.contains("server.listen"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_commands_log_an_account_in_by_pasted_code() {
    let mock = MockUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(dir.path(), &mock.base_url(), "", "");
    common::edit_config(&config, |c| {
        c.oauth.token_url = mock.oauth_token_url();
        c.oauth.authorize_url = mock.oauth_authorize_url();
    });
    let id = last_line(&ok(&run(&config, &["add-oauth", "--name", "max"])));
    assert!(id.starts_with("acc_"));
    let listed: serde_json::Value = serde_json::from_str(&ok(&run(&config, &["list-accounts", "--json"]))).unwrap();
    assert_eq!(listed[0]["state"], "needs_login");

    let url = last_line(&ok(&run(&config, &["oauth-start", "--account-id", &id, "--no-browser"])));
    assert!(url.starts_with(&mock.oauth_authorize_url()), "{url}");
    assert!(url.contains("code_challenge_method=S256") && url.contains("state="), "{url}");
    let pasted = mock.approve(&url).unwrap();

    let wrong = run(&config, &["oauth-callback", "--account-id", &id, "--code", "abc#forged-state"]);
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("state"), "{}", String::from_utf8_lossy(&wrong.stderr));

    let out = ok(&run(&config, &["oauth-callback", "--account-id", &id, "--code", &pasted]));
    assert!(out.contains("logged in as mock-user@example.com"), "{out}");
    let listed: serde_json::Value = serde_json::from_str(&ok(&run(&config, &["list-accounts", "--json"]))).unwrap();
    assert_eq!(listed[0]["state"], "active", "{listed}");
    assert_eq!(listed[0]["email"], "mock-user@example.com");
    assert!(listed[0]["token_expires_at"].is_string(), "{listed}");
    let doc: serde_json::Value = serde_json::from_str(&ok(&run(&config, &["health-check", "--json"]))).unwrap();
    assert_eq!(doc["usable"], true, "{doc}");
    ok(&run(&config, &["remove-account", "--account-id", &id]));
}

/// Runs the binary with `stdin` piped in (then closed).
fn run_with_stdin(config: &std::path::Path, args: &[&str], stdin: &[u8]) -> Output {
    use std::io::Write;
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("LLM_GATEWAY_MASTER_KEY")
        .env_remove("LLM_GATEWAY_API_KEY")
        .env_remove("LLM_GATEWAY_OAUTH_CLIENT_SECRET")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    child.stdin.take().expect("stdin").write_all(stdin).expect("write stdin");
    child.wait_with_output().expect("binary exits")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_api_key_reads_the_key_from_a_pipe_and_the_account_works() {
    let mock = MockUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(dir.path(), &mock.base_url(), "", "");
    let out = run_with_stdin(&config, &["add-api-key", "--name", "piped"], b"  sk-ant-api03-from-stdin \nignored\n");
    let id = last_line(&ok(&out));
    assert!(id.starts_with("acc_"), "{id}");
    assert!(!std::fs::read_to_string(&config).unwrap().contains("from-stdin"), "the key stays out of the config");

    let doc: serde_json::Value = serde_json::from_str(&ok(&run(&config, &["health-check", "--json"]))).unwrap();
    assert_eq!(doc["usable"], true, "{doc}");
    let keys: Vec<String> = mock.requests().iter().filter_map(|r| r.header("x-api-key").map(str::to_string)).collect();
    assert_eq!(keys, ["sk-ant-api03-from-stdin"], "the first line, trimmed, is the key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_api_key_with_nothing_on_stdin_fails_clearly_and_adds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(dir.path(), "http://127.0.0.1:9", "", "");
    for stdin in [&b""[..], b"   \n", b"\n"] {
        let out = run_with_stdin(&config, &["add-api-key", "--name", "empty"], stdin);
        assert!(!out.status.success(), "{stdin:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("no API key on standard input"), "{stderr}");
        assert!(stderr.contains("| llm-gateway add-api-key --name empty"), "shows the piped form: {stderr}");
    }
    // `run` gives the child no standard input at all: the same clear error, not a hang.
    let out = run(&config, &["add-api-key", "--name", "empty"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no API key on standard input"));
    let listed: serde_json::Value = serde_json::from_str(&ok(&run(&config, &["list-accounts", "--json"]))).unwrap();
    assert_eq!(listed, serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_oauth_reads_the_client_secret_from_a_pipe() {
    let mock = MockUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(dir.path(), &mock.base_url(), "", "");
    common::edit_config(&config, |c| {
        c.oauth.token_url = mock.oauth_token_url();
        c.oauth.authorize_url = mock.oauth_authorize_url();
    });
    let empty = run_with_stdin(&config, &["add-oauth", "--name", "max", "--client-secret-stdin"], b"");
    assert!(!empty.status.success());
    assert!(String::from_utf8_lossy(&empty.stderr).contains("no OAuth client secret on standard input"));

    let args = ["add-oauth", "--name", "max", "--client-secret-stdin"];
    let id = last_line(&ok(&run_with_stdin(&config, &args, b"client-secret-from-stdin\n")));
    let url = last_line(&ok(&run(&config, &["oauth-start", "--account-id", &id, "--no-browser"])));
    let pasted = mock.approve(&url).unwrap();
    ok(&run(&config, &["oauth-callback", "--account-id", &id, "--code", &pasted]));
    let exchange = mock.requests().into_iter().find(|r| r.path == "/v1/oauth/token").expect("a code exchange");
    let body: serde_json::Value = serde_json::from_str(&exchange.body).unwrap();
    assert_eq!(body["client_secret"], "client-secret-from-stdin", "{body}");
}

/// The server's resident memory (KiB) once it answers `/health`, with the secrets file keyed by `master_key`
/// (argon2id over a passphrase) or by a generated `master.key` (`None`).
#[cfg(target_os = "linux")]
async fn rss_after_start_kb(master_key: Option<&str>) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(dir.path(), "http://127.0.0.1:9", "", "");
    let command = |args: &[&str]| {
        let mut c = Command::new(BIN);
        c.arg("--config").arg(&config).args(args).env_remove("LLM_GATEWAY_LISTEN");
        match master_key {
            Some(k) => c.env("LLM_GATEWAY_MASTER_KEY", k),
            None => c.env_remove("LLM_GATEWAY_MASTER_KEY"),
        };
        c
    };
    // One stored credential, so the server opens (and derives the key of) an existing secrets file.
    ok(&command(&["add-api-key", "--key", "sk-ant-api03-rss", "--name", "main"]).output().unwrap());
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{port}");
    let mut server =
        command(&["server", "--listen", &listen]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let http = reqwest::Client::new();
    let mut up = false;
    for _ in 0..200 {
        if http.get(format!("http://{listen}/health")).send().await.is_ok_and(|r| r.status() == 200) {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.id())).unwrap_or_default();
    let _ = server.kill();
    let _ = server.wait();
    assert!(up, "server did not come up");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS in /proc/PID/status");
    line.split_whitespace().nth(1).and_then(|kb| kb.parse().ok()).expect("VmRSS in kB")
}

/// argon2id's 19 MiB of working memory must go back to the OS once the key is derived. Compared with the
/// `master.key` mode rather than against a fixed bar, so the test holds for debug and release builds alike (the
/// release numbers, ~12 MB in both modes, are in bench/README.md).
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passphrase_protected_secrets_file_costs_no_resident_memory_after_start() {
    let key_file = rss_after_start_kb(None).await;
    let passphrase = rss_after_start_kb(Some("correct horse battery staple")).await;
    assert!(
        passphrase < key_file + 8 * 1024,
        "with LLM_GATEWAY_MASTER_KEY the server holds {passphrase} KiB, with master.key {key_file} KiB"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_the_running_server_cannot_apply_yet_is_reported_and_applied_later() {
    let mock = MockUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(dir.path(), &mock.base_url(), "", "");
    let id = last_line(&ok(&run(&config, &["add-api-key", "--key", "sk-ant-good", "--name", "main"])));
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let listen = format!("127.0.0.1:{port}");
    let mut server = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .args(["server", "--listen", &listen])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let url = format!("http://{listen}");
    let mut up = false;
    for _ in 0..100 {
        if http.get(format!("{url}/health")).send().await.is_ok_and(|r| r.status() == 200) {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "server did not come up");

    // The server cannot read the secret store (as with a keychain that does not answer): reloading the changed
    // account fails until it can.
    let secrets = dir.path().join("secrets.enc");
    let good = std::fs::read(&secrets).unwrap();
    std::fs::write(&secrets, b"unreadable").unwrap();
    let out = run(&config, &["disable-account", "--account-id", &id]);
    let stdout = ok(&out);
    assert!(last_line(&stdout).contains(&id), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("running server has not applied it yet"), "{stderr}");
    assert!(stderr.contains("secret store"), "the reason is given: {stderr}");

    // Once the store answers again, the server applies the change by itself.
    std::fs::write(&secrets, good).unwrap();
    let mut applied = false;
    for _ in 0..50 {
        let status: serde_json::Value = serde_json::from_str(&ok(&run(&config, &["status", "--json"]))).unwrap();
        if status["accounts"][0]["state"] == "disabled" {
            applied = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(applied, "the server applied the change once the secret store answered");
    server.kill().unwrap();
    let _ = server.wait();
}

/// Runs the binary off the async runtime, so the in-process gateway it talks to keeps serving.
async fn run_async(config: &std::path::Path, args: &[&str]) -> Output {
    let (config, args) = (config.to_path_buf(), args.iter().map(|a| a.to_string()).collect::<Vec<_>>());
    tokio::task::spawn_blocking(move || run(&config, &args.iter().map(String::as_str).collect::<Vec<_>>()))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_token_prints_the_token_the_running_gateway_accepts() {
    let h = common::Harness::with(|_| {}).await;
    let out = ok(&run_async(&h.config_path, &["admin-token"]).await);
    let token = last_line(&out);
    assert_eq!(out.trim(), token, "the token alone: {out}");
    assert_eq!(token, h.admin_token());
    let status = h.http.get(format!("{}/admin/api/v1/status", h.url)).bearer_auth(&token).send().await.unwrap();
    assert_eq!(status.status(), 200);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_token_and_ui_without_a_running_gateway_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(dir.path(), "http://127.0.0.1:9", "", "");
    let expected = format!("no running gateway found for {}; start it with `llm-gateway server`", config.display());
    for args in [&["admin-token"][..], &["ui", "--no-browser"]] {
        let out = run(&config, args);
        assert!(!out.status.success(), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}: nothing on stdout");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&expected), "{args:?}: {stderr}");
    }
    // runtime.json left behind by a gateway that did not stop cleanly: nothing answers there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let stale = serde_json::json!({ "url": format!("http://{closed}"), "admin_token": "lgw-stale", "pid": 1 });
    std::fs::write(dir.path().join("runtime.json"), stale.to_string()).unwrap();
    let out = run(&config, &["admin-token"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(&expected), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ui_no_browser_prints_an_address_whose_code_signs_in_once() {
    let h = common::Harness::with(|_| {}).await;
    let output = run_async(&h.config_path, &["ui", "--no-browser"]).await;
    let out = ok(&output);
    assert_eq!(out.lines().count(), 1, "the address alone on stdout: {out}");
    let url = last_line(&out);
    let prefix = format!("{}/ui/#code=", h.url);
    let code = url.strip_prefix(&prefix).unwrap_or_else(|| panic!("{url} starts with {prefix}"));
    assert!(String::from_utf8_lossy(&output.stderr).contains("works once"));
    let sign_in =
        || h.http.post(format!("{}/admin/api/v1/session", h.url)).json(&serde_json::json!({ "code": code })).send();
    let first = sign_in().await.unwrap();
    assert_eq!(first.status(), 200);
    assert!(first.headers()["set-cookie"].to_str().unwrap().starts_with("lgw_session="));
    assert_eq!(sign_in().await.unwrap().status(), 401, "the code works once");
    h.shutdown().await;
}

/// Sends one Messages request through the gateway and reads the whole answer.
async fn one_request(h: &common::Harness, stream: bool) {
    let response = h
        .http
        .post(format!("{}/v1/messages", h.url))
        .header("content-type", "application/json")
        .header("anthropic-version", "2023-06-01")
        .header("x-mock-cache-tokens", "100,200")
        .body(common::simple_body(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap();
}

async fn flush(h: &common::Harness) {
    let usage = h.gateway.as_ref().unwrap().gateway().usage().clone();
    tokio::task::spawn_blocking(move || usage.flush()).await.unwrap();
}

/// The token and request sums of a `usage --json` report's rows, keyed by row.
fn sums(report: &serde_json::Value) -> Vec<(String, u64, u64, u64, u64, u64)> {
    let n = |r: &serde_json::Value, f: &str| r[f].as_u64().unwrap();
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let key = r["key"].as_str().unwrap().to_string();
            (
                key,
                n(r, "requests"),
                n(r, "input_tokens"),
                n(r, "output_tokens"),
                n(r, "cache_creation_tokens"),
                n(r, "cache_read_tokens"),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_and_requests_agree_with_the_admin_api_and_read_the_database_without_a_server() {
    let mut h = common::Harness::start().await;
    one_request(&h, false).await;
    one_request(&h, true).await;
    flush(&h).await;
    let api: serde_json::Value = h
        .http
        .get(format!("{}/admin/api/v1/usage?by=model", h.url))
        .bearer_auth(h.admin_token())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let config = h.config_path.clone();
    let online: serde_json::Value =
        serde_json::from_str(&ok(&run(&config, &["usage", "--by", "model", "--json"]))).unwrap();
    assert_eq!(sums(&online), sums(&api));
    assert_eq!(sums(&online)[0].1, 2);
    assert_eq!(sums(&online)[0].5, 400, "cache reads of both requests");
    let text = ok(&run(&config, &["usage", "--by", "model"]));
    assert!(text.contains("claude-sonnet-5") && text.contains("TOTAL"), "{text}");
    let log: serde_json::Value = serde_json::from_str(&ok(&run(&config, &["requests", "--json"]))).unwrap();
    assert_eq!(log["requests"].as_array().unwrap().len(), 2);
    let text = ok(&run(&config, &["requests"]));
    assert_eq!(text.lines().filter(|l| l.contains("claude-sonnet-5")).count(), 2, "{text}");

    // `--follow` prints requests as they finish.
    let mut follow = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .args(["requests", "--follow", "--json", "--limit", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = follow.stdout.take().unwrap();
    let (lines_tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let first: serde_json::Value = serde_json::from_str(&lines.recv_timeout(Duration::from_secs(20)).unwrap()).unwrap();
    assert_eq!(first["stream"], true, "the latest request first");
    one_request(&h, false).await;
    let next: serde_json::Value = serde_json::from_str(&lines.recv_timeout(Duration::from_secs(20)).unwrap()).unwrap();
    assert_eq!(next["stream"], false);
    assert_ne!(next["id"], first["id"]);
    follow.kill().unwrap();
    follow.wait().unwrap();

    // Without a server, the same numbers straight from the database.
    h.gateway.take().unwrap().shutdown().await;
    let offline: serde_json::Value =
        serde_json::from_str(&ok(&run(&config, &["usage", "--by", "model", "--json"]))).unwrap();
    assert_eq!(sums(&offline)[0].1, 3);
    let log: serde_json::Value = serde_json::from_str(&ok(&run(&config, &["requests", "--json"]))).unwrap();
    assert_eq!(log["requests"].as_array().unwrap().len(), 3);
    // A runtime.json left behind by a server that was killed: the database is read all the same.
    let runtime = serde_json::json!({"url": "http://127.0.0.1:9", "admin_token": "stale", "pid": 1});
    std::fs::write(config.parent().unwrap().join("runtime.json"), runtime.to_string()).unwrap();
    let stale: serde_json::Value =
        serde_json::from_str(&ok(&run(&config, &["usage", "--by", "model", "--json"]))).unwrap();
    assert_eq!(sums(&stale), sums(&offline));
    let bad = run(&config, &["usage", "--since", "yesterday"]);
    assert_eq!(bad.status.code(), Some(2), "invalid input");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("since"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_completed_by_the_cli_is_taken_up_by_the_running_server_that_had_seen_it_logged_out() {
    let h = common::Harness::with(|p| {
        common::edit_config(p, common::oauth_at_mock);
    })
    .await;
    let config = h.config_path.clone();
    let id = last_line(&ok(&run_async(&config, &["add-oauth", "--name", "max", "--clients", "any"]).await));
    // The running server takes the account up and reads its (missing) login: "needs login", cached.
    h.eventually("the server to show the new account needing a login", || async {
        let status = h.status_json().await;
        status["accounts"][0]["oauth_state"] == "needs_login"
    })
    .await;
    let url = last_line(&ok(&run_async(&config, &["oauth-start", "--account-id", &id, "--no-browser"]).await));
    let pasted = h.mock.approve(&url).unwrap();
    ok(&run_async(&config, &["oauth-callback", "--account-id", &id, "--code", &pasted]).await);
    h.eventually("the server to take the CLI's login up", || async {
        h.status_json().await["accounts"][0]["oauth_state"] == "active"
    })
    .await;
    assert_eq!(h.message(&[]).await.status(), 200, "the account serves");
    h.shutdown().await;
}
