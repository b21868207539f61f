//! An admin API client for the tests: every call names the documented operation (method + path template) and
//! every answer is checked against `docs/admin-api.yaml` before the test sees it.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{self, Harness};
use crate::spec::spec;

pub const PREFIX: &str = "/admin/api/v1";

/// A gateway with its mock upstream, the admin token, and a temporary home Claude Code's operations look at.
pub struct Api {
    pub h: Harness,
    pub token: String,
    /// Claude Code's home (`HOME` of the environment the gateway's Claude Code operations use).
    pub home: PathBuf,
    _home_dir: tempfile::TempDir,
}

/// An answer, already checked against the document.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// The JSON body (`null` when empty).
    pub body: Value,
}

/// How a request authenticates.
#[derive(Clone, Copy)]
pub enum Auth<'a> {
    /// The admin token.
    Admin,
    /// No credentials.
    None,
    /// `Authorization: Bearer <this>`.
    Bearer(&'a str),
}

/// A request body.
pub enum Body {
    None,
    Json(Value),
    /// Raw bytes with a content type.
    Raw(&'static str, Vec<u8>),
}

impl Api {
    /// A gateway with one good API-key account (`primary`).
    pub async fn start() -> Self {
        Self::with(|path| {
            common::add_account(path, "primary", common::GOOD_KEY, &[]);
        })
        .await
    }

    /// A gateway whose config directory `setup` prepares; its OAuth endpoints are the mock's.
    pub async fn with(setup: impl FnOnce(&Path)) -> Self {
        let mock = mock_upstream::MockUpstream::start().await.expect("mock upstream");
        let dir = tempfile::tempdir().expect("tempdir");
        let config_path = common::write_config(dir.path(), &mock.base_url(), "", "");
        common::edit_config(&config_path, |c| {
            let base = c.upstream.base_url.clone();
            c.oauth.token_url = format!("{base}/v1/oauth/token");
            c.oauth.authorize_url = format!("{base}/oauth/authorize");
        });
        setup(&config_path);
        let home_dir = tempfile::tempdir().expect("home");
        let home = home_dir.path().to_path_buf();
        let env = llm_gateway::claude_code::Environment {
            vars: [("HOME".to_string(), home.display().to_string())].into_iter().collect(),
            managed_dir: None,
        };
        let options = llm_gateway::StartOptions {
            config_path: config_path.clone(),
            claude_code_env: Some(env),
            ..llm_gateway::StartOptions::default()
        };
        let gateway = llm_gateway::start(options).await.expect("gateway starts");
        let url = format!("http://{}", gateway.addr());
        let http = reqwest::Client::new();
        let h = Harness { mock, gateway: Some(gateway), dir, config_path, url, http, store: None };
        let token = h.admin_token();
        Api { h, token, home, _home_dir: home_dir }
    }

    /// Calls `method template` (`{id}` replaced by `id`) with the admin token and a JSON body.
    pub async fn call(&self, method: &str, template: &str, id: Option<&str>, body: Option<Value>) -> Answer {
        let body = body.map_or(Body::None, Body::Json);
        self.send(method, template, id, "", body, Auth::Admin).await
    }

    pub async fn get(&self, template: &str, id: Option<&str>) -> Answer {
        self.call("GET", template, id, None).await
    }

    pub async fn post(&self, template: &str, id: Option<&str>, body: Value) -> Answer {
        self.call("POST", template, id, Some(body)).await
    }

    pub async fn patch(&self, template: &str, id: Option<&str>, body: Value) -> Answer {
        self.call("PATCH", template, id, Some(body)).await
    }

    /// A POST without a body.
    pub async fn action(&self, template: &str, id: Option<&str>) -> Answer {
        self.call("POST", template, id, None).await
    }

    pub async fn delete(&self, template: &str, id: Option<&str>) -> Answer {
        self.call("DELETE", template, id, None).await
    }

    /// The one way requests are sent: `query` is appended as is (`?project=…`).
    pub async fn send(
        &self,
        method: &str,
        template: &str,
        id: Option<&str>,
        query: &str,
        body: Body,
        auth: Auth<'_>,
    ) -> Answer {
        let path = match id {
            Some(id) => template.replace("{id}", &url_escape(id)),
            None => template.to_string(),
        };
        assert!(!path.contains('{'), "{template} needs an id");
        let url = format!("{}{PREFIX}{path}{query}", self.h.url);
        let mut request = self.h.http.request(method.parse().expect("method"), url);
        request = match auth {
            Auth::Admin => request.bearer_auth(&self.token),
            Auth::None => request,
            Auth::Bearer(token) => request.bearer_auth(token),
        };
        let mut sent_json = None;
        request = match body {
            Body::None => request,
            Body::Json(value) => {
                let request = request.json(&value);
                sent_json = Some(value);
                request
            }
            Body::Raw(content_type, bytes) => request.header("content-type", content_type).body(bytes),
        };
        let response = request.send().await.expect("the admin API answers");
        let status = response.status().as_u16();
        let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_string);
        if content_type.as_deref().is_some_and(|t| t.starts_with("text/event-stream")) {
            // An event stream does not end: its status and content type are checked, and it is closed.
            spec().check_stream(method, template, status);
            return Answer { status, body: Value::Null };
        }
        let bytes = response.bytes().await.expect("body");
        let body = spec().check(method, template, status, content_type.as_deref(), &bytes);
        if let Some(sent) = sent_json.filter(|_| (200..300).contains(&status)) {
            spec().check_request(method, template, &sent);
        }
        Answer { status, body }
    }

    /// Adds an API-key account through the API; returns its id.
    pub async fn add_api_key(&self, name: &str, key: &str) -> String {
        let answer =
            self.post("/accounts", None, serde_json::json!({"kind": "api_key", "name": name, "key": key})).await;
        answer.ok(201)["id"].as_str().expect("id").to_string()
    }

    /// Adds an OAuth account (serving any client) through the API; returns its id.
    pub async fn add_oauth(&self, name: &str) -> String {
        let body = serde_json::json!({"kind": "oauth", "name": name, "clients": "any"});
        self.post("/accounts", None, body).await.ok(201)["id"].as_str().expect("id").to_string()
    }

    /// The secret stored under `id` in the config directory's secret store (read from the file, as another
    /// process would).
    pub fn secret(&self, id: &str) -> Option<String> {
        let store = llm_gateway::secrets::FileStore::open(self.h.dir.path()).expect("file store");
        llm_gateway::secrets::SecretStore::get(&store, id).expect("store read").map(|s| s.expose().to_string())
    }

    /// The config file's text.
    pub fn config_text(&self) -> String {
        std::fs::read_to_string(&self.h.config_path).expect("config file")
    }

    pub async fn shutdown(self) {
        self.h.shutdown().await;
    }
}

impl Answer {
    /// Asserts the status; returns the body.
    #[track_caller]
    pub fn ok(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "{:#}", self.body);
        &self.body
    }

    /// Asserts an error of `kind` with `status` about `field` (`None`: no field); returns its message.
    #[track_caller]
    pub fn error(&self, status: u16, kind: &str, field: Option<&str>) -> String {
        assert_eq!(self.status, status, "{:#}", self.body);
        let error = &self.body["error"];
        assert_eq!(error["type"], kind, "{:#}", self.body);
        assert_eq!(error["field"].as_str(), field, "{:#}", self.body);
        error["message"].as_str().expect("message").to_string()
    }
}

fn url_escape(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
