//! Commands for the bundled local page (the gateway-served UI is a remote origin and gets no IPC). One call each.

use tauri::AppHandle;

use crate::feat;
use crate::view::PageState;

/// The gateway's state, for the page.
#[tauri::command]
pub fn page_state(app: AppHandle) -> PageState {
    feat::page_state(&app)
}

/// Listen on `port` instead (saved as `server.listen`).
#[tauri::command]
pub fn use_port(app: AppHandle, port: u16) {
    feat::use_port(&app, port);
}

/// Resume a paused gateway.
#[tauri::command]
pub fn resume(app: AppHandle) {
    feat::resume(&app);
}

/// Start again after a failure.
#[tauri::command]
pub fn retry(app: AppHandle) {
    feat::retry(&app);
}

/// Start a Claude login in the browser.
#[tauri::command]
pub fn log_in(app: AppHandle) {
    feat::log_in(&app);
}

/// Copy the gateway's address.
#[tauri::command]
pub fn copy_address(app: AppHandle) {
    feat::copy_address(&app);
}
