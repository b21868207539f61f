//! Validation: every error names the key and says what is expected.

use std::collections::HashSet;
use std::net::SocketAddr;

use super::{Config, ConfigError};

/// Checks a parsed config for values the gateway cannot use.
pub fn validate(config: &Config) -> Result<(), ConfigError> {
    parse_listen(&config.server.listen).map_err(|m| ConfigError::invalid("server.listen", m))?;
    if config.server.max_body_bytes < 1024 {
        return Err(ConfigError::invalid("server.max_body_bytes", "must be at least 1024 bytes"));
    }
    if config.server.max_stream_event_bytes < 1024 {
        return Err(ConfigError::invalid("server.max_stream_event_bytes", "must be at least 1024 bytes"));
    }
    if config.server.worker_threads > 1024 {
        return Err(ConfigError::invalid("server.worker_threads", "must be between 0 (one per core) and 1024"));
    }
    check_timeout("server.header_read_timeout_secs", config.server.header_read_timeout_secs)?;
    check_timeout("server.idle_timeout_secs", config.server.idle_timeout_secs)?;
    if !(1..=1_000_000).contains(&config.server.max_connections) {
        return Err(ConfigError::invalid("server.max_connections", "must be between 1 and 1000000"));
    }
    let keep_alive = config.server.http2_keep_alive_secs;
    if keep_alive != 0.0 {
        check_timeout("server.http2_keep_alive_secs", keep_alive)?;
    }
    if !(1..=720).contains(&config.server.ui_session_hours) {
        return Err(ConfigError::invalid("server.ui_session_hours", "must be a whole number of hours from 1 to 720"));
    }
    check_url("upstream.base_url", &config.upstream.base_url)?;
    check_timeout("upstream.connect_timeout_secs", config.upstream.connect_timeout_secs)?;
    check_timeout("upstream.read_timeout_secs", config.upstream.read_timeout_secs)?;
    for (i, origin) in config.server.allowed_origins.iter().enumerate() {
        check_url(&format!("server.allowed_origins[{i}]"), origin)?;
    }
    for (key, url) in [
        ("oauth.authorize_url", &config.oauth.authorize_url),
        ("oauth.token_url", &config.oauth.token_url),
        ("oauth.redirect_uri", &config.oauth.redirect_uri),
    ] {
        check_url(key, url)?;
    }
    if config.oauth.client_id.trim().is_empty() {
        return Err(ConfigError::invalid("oauth.client_id", "must not be empty"));
    }

    if config.models.default_max_tokens == 0 {
        return Err(ConfigError::invalid("models.default_max_tokens", "must be at least 1"));
    }
    if let Some((name, _)) = config.models.aliases.iter().find(|(k, v)| k.trim().is_empty() || v.trim().is_empty()) {
        return Err(ConfigError::invalid(
            format!("models.aliases.{name}"),
            "alias names and targets must not be empty",
        ));
    }
    config.usage.check().map_err(|(key, message)| ConfigError::invalid(key, message))?;
    let r = &config.routing;
    if !(1..=10).contains(&r.max_attempts) {
        return Err(ConfigError::invalid("routing.max_attempts", "must be between 1 and 10"));
    }
    if r.breaker_threshold == 0 {
        return Err(ConfigError::invalid("routing.breaker_threshold", "must be at least 1"));
    }
    check_timeout("routing.overloaded_cooldown_secs", r.overloaded_cooldown_secs)?;
    check_timeout("routing.breaker_backoff_secs", r.breaker_backoff_secs)?;
    check_timeout("routing.breaker_max_backoff_secs", r.breaker_max_backoff_secs)?;
    check_whole_secs("routing.max_cooldown_secs", r.max_cooldown_secs, 1, MAX_WHOLE_SECS)?;
    check_whole_secs("routing.affinity_ttl_secs", r.affinity_ttl_secs, 0, MAX_WHOLE_SECS)?;
    check_whole_secs("server.shutdown_grace_secs", config.server.shutdown_grace_secs, 0, 86_400)?;

    let mut ids = HashSet::new();
    let mut names = HashSet::new();
    for (i, account) in config.accounts.iter().enumerate() {
        let key = |field: &str| format!("accounts[{i}].{field}");
        if account.id.trim().is_empty() {
            return Err(ConfigError::invalid(key("id"), "must not be empty"));
        }
        if !ids.insert(account.id.as_str()) {
            return Err(ConfigError::invalid(key("id"), format!("duplicate account id `{}`", account.id)));
        }
        if account.name.trim().is_empty() {
            return Err(ConfigError::invalid(key("name"), "must not be empty"));
        }
        if !names.insert(account.name.as_str()) {
            return Err(ConfigError::invalid(key("name"), format!("duplicate account name `{}`", account.name)));
        }
        if account.weight == 0 {
            return Err(ConfigError::invalid(key("weight"), "must be at least 1"));
        }
        if let Some(url) = &account.base_url {
            check_url(&key("base_url"), url)?;
        }
        if account.models.iter().any(|m| m.trim().is_empty()) {
            return Err(ConfigError::invalid(key("models"), "model names must not be empty"));
        }
    }

    let mut key_names = HashSet::new();
    for (i, client_key) in config.client_keys.iter().enumerate() {
        if client_key.name.trim().is_empty() {
            return Err(ConfigError::invalid(format!("client_keys[{i}].name"), "must not be empty"));
        }
        if !key_names.insert(client_key.name.as_str()) {
            return Err(ConfigError::invalid(
                format!("client_keys[{i}].name"),
                format!("duplicate client key name `{}`", client_key.name),
            ));
        }
        let hash_ok = client_key.sha256.len() == 64 && client_key.sha256.bytes().all(|b| b.is_ascii_hexdigit());
        if !hash_ok {
            return Err(ConfigError::invalid(
                format!("client_keys[{i}].sha256"),
                "must be 64 hex characters (the SHA-256 of the key; never the key itself)",
            ));
        }
    }
    Ok(())
}

/// Parses a listen address `HOST:PORT`; `localhost` is accepted as 127.0.0.1.
pub fn parse_listen(listen: &str) -> Result<SocketAddr, String> {
    let listen = listen.trim();
    let normalised = match listen.strip_prefix("localhost:") {
        Some(port) => format!("127.0.0.1:{port}"),
        None => listen.to_string(),
    };
    normalised
        .parse::<SocketAddr>()
        .map_err(|_| format!("`{listen}` is not HOST:PORT with an IP address (e.g. 127.0.0.1:8787 or [::1]:8787)"))
}

fn check_url(key: &str, value: &str) -> Result<(), ConfigError> {
    match reqwest::Url::parse(value) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(()),
        Ok(_) => Err(ConfigError::invalid(key, format!("`{value}` must be an http:// or https:// URL with a host"))),
        Err(e) => Err(ConfigError::invalid(key, format!("`{value}` is not a URL: {e}"))),
    }
}

/// Longest whole-second durations accepted (31 days): a 7-day window's reset fits, and a value multiplied into
/// milliseconds stays far from overflowing.
const MAX_WHOLE_SECS: u64 = 31 * 86_400;

/// Fractional seconds that become durations: finite, above 0, at most a day (NaN, negative, infinite or absurd
/// values would make the gateway panic or never time out).
fn check_timeout(key: &str, secs: f64) -> Result<(), ConfigError> {
    if secs.is_finite() && secs > 0.0 && secs <= 86_400.0 {
        Ok(())
    } else {
        Err(ConfigError::invalid(key, format!("must be a number of seconds above 0 and at most 86400 (got {secs})")))
    }
}

fn check_whole_secs(key: &str, secs: u64, min: u64, max: u64) -> Result<(), ConfigError> {
    if (min..=max).contains(&secs) {
        Ok(())
    } else {
        Err(ConfigError::invalid(key, format!("must be a whole number of seconds from {min} to {max} (got {secs})")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Account, AccountKind};

    fn account(id: &str, name: &str) -> Account {
        Account {
            id: id.into(),
            name: name.into(),
            kind: AccountKind::ApiKey,
            enabled: true,
            weight: 1,
            models: vec![],
            base_url: None,
            priority: 0,
            email: None,
            organization: None,
            oauth_client_id: None,
            clients: None,
            updated_at: String::new(),
        }
    }

    #[test]
    fn defaults_are_valid() {
        assert!(validate(&Config::default()).is_ok());
    }

    #[test]
    fn bad_listen_names_the_key() {
        let mut c = Config::default();
        c.server.listen = "nonsense".into();
        let err = validate(&c).unwrap_err().to_string();
        assert!(err.contains("server.listen"), "{err}");
    }

    #[test]
    fn localhost_listen_is_loopback() {
        assert_eq!(parse_listen("localhost:9000").unwrap(), "127.0.0.1:9000".parse().unwrap());
    }

    #[test]
    fn zero_weight_names_the_account_index() {
        let mut c = Config { accounts: vec![account("a", "one"), account("b", "two")], ..Default::default() };
        c.accounts[1].weight = 0;
        let err = validate(&c).unwrap_err().to_string();
        assert!(err.contains("accounts[1].weight"), "{err}");
    }

    #[test]
    fn duplicate_names_rejected() {
        let c = Config { accounts: vec![account("a", "same"), account("b", "same")], ..Default::default() };
        assert!(validate(&c).unwrap_err().to_string().contains("duplicate account name"));
    }

    #[test]
    fn durations_that_cannot_be_times_name_their_key() {
        type Set = fn(&mut Config, f64);
        let float_keys: [(&str, Set); 5] = [
            ("upstream.connect_timeout_secs", |c, v| c.upstream.connect_timeout_secs = v),
            ("upstream.read_timeout_secs", |c, v| c.upstream.read_timeout_secs = v),
            ("routing.overloaded_cooldown_secs", |c, v| c.routing.overloaded_cooldown_secs = v),
            ("routing.breaker_backoff_secs", |c, v| c.routing.breaker_backoff_secs = v),
            ("routing.breaker_max_backoff_secs", |c, v| c.routing.breaker_max_backoff_secs = v),
        ];
        for (key, set) in float_keys {
            for bad in [f64::NAN, -1.0, 0.0, f64::INFINITY, 1e300] {
                let mut c = Config::default();
                set(&mut c, bad);
                let err = validate(&c).unwrap_err().to_string();
                assert!(err.contains(key), "{key} = {bad}: {err}");
            }
            let mut c = Config::default();
            set(&mut c, 0.25);
            assert!(validate(&c).is_ok(), "{key} = 0.25 is fine");
        }
        type SetWhole = fn(&mut Config, u64);
        let whole_keys: [(&str, SetWhole, u64); 3] = [
            ("routing.max_cooldown_secs", |c, v| c.routing.max_cooldown_secs = v, 0),
            ("routing.affinity_ttl_secs", |c, v| c.routing.affinity_ttl_secs = v, u64::MAX),
            ("server.shutdown_grace_secs", |c, v| c.server.shutdown_grace_secs = v, u64::MAX),
        ];
        for (key, set, extra_bad) in whole_keys {
            for bad in [u64::MAX, u64::MAX / 1000 + 1, extra_bad] {
                let mut c = Config::default();
                set(&mut c, bad);
                let err = validate(&c).unwrap_err().to_string();
                assert!(err.contains(key), "{key} = {bad}: {err}");
            }
        }
        let mut c = Config::default();
        c.routing.max_cooldown_secs = 7 * 86_400;
        assert!(validate(&c).is_ok(), "a 7-day window's reset fits");
    }

    #[test]
    fn ui_session_hours_must_be_from_one_hour_to_thirty_days() {
        for (hours, ok) in [(0, false), (1, true), (12, true), (720, true), (721, false), (u64::MAX, false)] {
            let mut c = Config::default();
            c.server.ui_session_hours = hours;
            match validate(&c) {
                Ok(()) => assert!(ok, "{hours} h accepted"),
                Err(e) => assert!(!ok && e.to_string().contains("server.ui_session_hours"), "{hours} h: {e}"),
            }
        }
    }

    #[test]
    fn non_http_base_url_rejected() {
        let mut c = Config::default();
        c.upstream.base_url = "ftp://example.com".into();
        assert!(validate(&c).unwrap_err().to_string().contains("upstream.base_url"));
    }
}
