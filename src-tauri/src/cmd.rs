//! Commands of the window process's bundled local page (the gateway-served UI is a remote origin and gets no
//! IPC). One call each: the state comes from the app, the buttons go to the app.

use tauri::State;

use crate::window_app::WindowProcess;
use crate::window_protocol::{FromWindow, PageState};

/// The gateway's state, for the page.
#[tauri::command]
pub fn page_state(window: State<'_, WindowProcess>) -> PageState {
    window.page()
}

/// Listen on `port` instead (saved as `server.listen`).
#[tauri::command]
pub fn use_port(window: State<'_, WindowProcess>, port: u16) {
    window.tell(FromWindow::UsePort { port });
}

/// Resume a paused gateway.
#[tauri::command]
pub fn resume(window: State<'_, WindowProcess>) {
    window.tell(FromWindow::Resume);
}

/// Start again after a failure.
#[tauri::command]
pub fn retry(window: State<'_, WindowProcess>) {
    window.tell(FromWindow::Retry);
}

/// Start a Claude login in the browser.
#[tauri::command]
pub fn log_in(window: State<'_, WindowProcess>) {
    window.tell(FromWindow::LogIn);
}

/// Copy the gateway's address.
#[tauri::command]
pub fn copy_address(window: State<'_, WindowProcess>) {
    window.tell(FromWindow::CopyAddress);
}
