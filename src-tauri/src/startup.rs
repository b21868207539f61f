//! What both binaries do first: logs to stderr, and no OpenGL in GTK.

/// Logs go to stderr (`RUST_LOG` filters; default `info`).
pub fn init_logging() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}

/// Neither process draws with OpenGL itself (the tray has no window; in the window, WebKit composites on its own),
/// but GTK's X11 backend loads the GL driver at start-up to pick visuals: with Mesa's software renderer that is
/// ~50 MB of LLVM in the process and ~80 MB in WebKit's web process. The window process and WebKit's helpers
/// inherit this. The user's own `GDK_GL` wins.
pub fn disable_gl() {
    if std::env::var_os("GDK_GL").is_none() {
        // SAFETY: called first thing in `main`, before any other thread exists.
        unsafe { std::env::set_var("GDK_GL", "disable") };
    }
}
