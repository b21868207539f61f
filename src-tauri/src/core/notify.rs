//! Desktop notifications (and a log line for each, which is also how the tests see them).

use crate::app::App;

/// Shows a notification; failures (no notification server) are logged by the shell and otherwise ignored.
pub fn show(app: &App, title: &str, body: &str) {
    tracing::info!(%title, %body, "notification");
    app.shell().notify(title, body);
}
