//! What counts as "this machine": one rule for Host names, Origins, redirect URIs and gateway addresses.

/// Whether a host name or IP literal names this machine: `localhost`, a `*.localhost` name (RFC 6761), or a
/// loopback address (`127.0.0.0/8`, `::1`, `::ffff:127.x` included). A trailing dot is ignored.
pub fn is_loopback_name(name: &str) -> bool {
    let name = name.trim_end_matches('.');
    let name = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')).unwrap_or(name);
    name.eq_ignore_ascii_case("localhost")
        || name.to_ascii_lowercase().ends_with(".localhost")
        || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.to_canonical().is_loopback())
}

/// Whether a URL's host names this machine and its scheme is one of `schemes`.
pub fn is_loopback_url(url: &str, schemes: &[&str]) -> bool {
    let Ok(url) = url::Url::parse(url) else { return false };
    schemes.contains(&url.scheme())
        && match url.host() {
            Some(url::Host::Domain(d)) => is_loopback_name(d),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.to_canonical().is_loopback(),
            None => false,
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_and_urls() {
        for name in ["localhost", "LOCALHOST.", "app.localhost", "127.0.0.2", "::1", "[::1]", "::ffff:127.0.0.1"] {
            assert!(is_loopback_name(name), "{name}");
        }
        for name in ["evil.example", "localhost.evil.example", "10.0.0.1", "", "null"] {
            assert!(!is_loopback_name(name), "{name}");
        }
        assert!(is_loopback_url("http://localhost:3000", &["http", "https"]));
        assert!(is_loopback_url("http://[::1]:8787/cb", &["http"]));
        assert!(!is_loopback_url("https://localhost:1/cb", &["http"]), "scheme not allowed");
        assert!(!is_loopback_url("https://evil.example", &["http", "https"]));
        assert!(!is_loopback_url("not a url", &["http"]));
    }
}
