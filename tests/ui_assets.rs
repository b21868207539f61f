//! The web UI as the gateway serves it: wired at `/ui/`, behind the same Host/Origin check as every route.

mod common;

use common::Harness;

#[tokio::test]
async fn the_ui_is_served_at_ui_with_its_csp_behind_the_host_check() {
    let h = Harness::with(|_| {}).await;
    let page = h.http.get(format!("{}/ui/", h.url)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
    assert!(page.text().await.unwrap().contains("js/main.js"));

    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let bare = no_redirects.get(format!("{}/ui", h.url)).send().await.unwrap();
    assert_eq!(bare.status(), 308);
    assert_eq!(bare.headers()["location"], "/ui/");

    let rebound = h.http.get(format!("{}/ui/", h.url)).header("host", "evil.example:8787").send().await.unwrap();
    assert_eq!(rebound.status(), 403, "a DNS-rebinding page must not load the UI");
    let cross_site =
        h.http.get(format!("{}/ui/js/main.js", h.url)).header("origin", "https://evil.example").send().await;
    assert_eq!(cross_site.unwrap().status(), 403);
    h.shutdown().await;
}
