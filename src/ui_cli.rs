//! `llm-gateway admin-token` and `llm-gateway ui [--no-browser]`: both speak to the running gateway that
//! `runtime.json` beside the config names, with the admin token it holds.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use llm_gateway::config::{ConfigFile, RuntimeInfo};

/// How long the CLI waits for the running gateway to answer.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The running gateway's `runtime.json`, or the error saying none runs.
fn running(config: &Path) -> Result<RuntimeInfo> {
    RuntimeInfo::read(&ConfigFile::new(config)).ok_or_else(|| not_running(config))
}

fn not_running(config: &Path) -> anyhow::Error {
    anyhow!("no running gateway found for {}; start it with `llm-gateway server`", config.display())
}

/// Sends `request` to the gateway of `info`; a gateway that does not answer is reported as not running (its
/// `runtime.json` is left from a run that did not stop cleanly), one that refuses the token as such.
async fn send(config: &Path, info: &RuntimeInfo, request: reqwest::RequestBuilder) -> Result<reqwest::Response> {
    let response = request.bearer_auth(&info.admin_token).send().await.map_err(|_| not_running(config))?;
    match response.status().as_u16() {
        200..=299 => Ok(response),
        401 => bail!(
            "the gateway at {} refused the admin token in runtime.json: is another gateway using that address? \
             Restart this one with `llm-gateway server`",
            info.url
        ),
        status => {
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            let message = body["error"]["message"].as_str().unwrap_or("no error message");
            bail!("the gateway at {} answered {status}: {message}", info.url)
        }
    }
}

fn http() -> Result<reqwest::Client> {
    reqwest::Client::builder().timeout(TIMEOUT).build().context("cannot build the HTTP client")
}

/// `admin-token`: the running gateway's admin token, once it has accepted it.
pub async fn admin_token(config: &Path) -> Result<String> {
    let info = running(config)?;
    send(config, &info, http()?.get(format!("{}/admin/api/v1/status", info.url))).await?;
    Ok(info.admin_token)
}

/// `ui`: a one-time sign-in address from the running gateway, opened in the browser unless `no_browser`.
pub async fn ui(config: &Path, no_browser: bool) -> Result<String> {
    let info = running(config)?;
    let response = send(config, &info, http()?.post(format!("{}/admin/api/v1/session/code", info.url))).await?;
    let body: serde_json::Value = response.json().await.context("the gateway's answer is not JSON")?;
    let url = body["url"].as_str().context("the gateway's answer has no url")?.to_string();
    eprintln!("Open this address to sign in to the web UI (it works once, within 2 minutes):");
    if !no_browser && let Err(e) = open::that_detached(&url) {
        eprintln!("could not open a browser ({e}); open the address yourself");
    }
    Ok(url)
}
