//! From configuration to [`OAuthSettings`]: the global `oauth:` section with an account's own client id.

use super::OAuthSettings;
use crate::config::{Account, OAuthConfig};
use crate::secrets::Secret;

/// The OAuth settings `account` uses: `oauth:` from the config, with the account's `oauth_client_id` and client
/// secret (from the secret store) when it has them.
pub fn settings_for(config: &OAuthConfig, account: Option<&Account>, client_secret: Option<Secret>) -> OAuthSettings {
    OAuthSettings {
        client_id: account.and_then(|a| a.oauth_client_id.clone()).unwrap_or_else(|| config.client_id.clone()),
        client_secret,
        authorize_url: config.authorize_url.clone(),
        token_url: config.token_url.clone(),
        redirect_uri: config.redirect_uri.clone(),
        scopes: config.scopes.clone(),
    }
}
