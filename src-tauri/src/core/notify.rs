//! Desktop notifications (and a log line for each, which is also how the tests see them).

use tauri::AppHandle;
use tauri_plugin_notification::NotificationExt;

/// Shows a notification; failures (no notification server) are logged and otherwise ignored.
pub fn show(app: &AppHandle, title: &str, body: &str) {
    tracing::info!(%title, %body, "notification");
    if let Err(e) = app.notification().builder().title(title).body(body).show() {
        tracing::debug!("cannot show a notification: {e}");
    }
}
