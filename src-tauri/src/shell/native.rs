//! The Linux tray without Tauri, so the tray process never links WebKit (its libraries alone were ~35 MB of the
//! tray's resident memory): tao's event loop and the `tray-icon` crate (an Ayatana AppIndicator with a D-Bus menu,
//! exactly what Tauri's tray uses), single instance over D-Bus, the `llm-gateway://` handler as a `.desktop` file,
//! notifications through notify-rust, Start at login through auto-launch (an XDG autostart entry). The window is the
//! other binary, a Tauri app.

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use tao::event::{Event, StartCause};
use tao::event_loop::{ControlFlow, EventLoopBuilder, EventLoopProxy};
use tray_icon::menu::{CheckMenuItem, Menu, MenuEvent, MenuItem, PredefinedMenuItem};
use tray_icon::{Icon, TrayIcon, TrayIconBuilder};

use super::APP_NAME;
use crate::app::{self, HIDDEN_ARG};
use crate::core::deeplink::SCHEME;
use crate::core::monitor;
use crate::core::service::Phase;
use crate::core::tray::{self, Entry, Extras};
use crate::feat;
use crate::view::{self, TrayView};

/// What other threads ask of the UI thread.
#[derive(Debug)]
enum UserEvent {
    /// Show this tray view.
    Tray { view: Box<TrayView>, extras: Extras, counts_only: bool },
    /// A menu item was chosen.
    Menu(String),
    /// Another launch handed its arguments over.
    SecondLaunch(Vec<String>),
    /// Leave the event loop with this status.
    Exit(i32),
}

/// The handle the app keeps: everything goes to the UI thread through the event loop's proxy.
#[derive(Clone)]
pub struct Shell(Arc<Inner>);

struct Inner {
    proxy: Mutex<EventLoopProxy<UserEvent>>,
    autostart: Result<auto_launch::AutoLaunch, String>,
}

impl Shell {
    fn new(proxy: EventLoopProxy<UserEvent>) -> Self {
        Self(Arc::new(Inner { proxy: Mutex::new(proxy), autostart: autostart_entry() }))
    }

    fn send(&self, event: UserEvent) {
        let proxy = self.0.proxy.lock().unwrap_or_else(PoisonError::into_inner);
        if proxy.send_event(event).is_err() {
            tracing::debug!("the event loop has ended; dropped a UI event");
        }
    }

    /// Shows `view` (from any thread); `shown` is what is on screen now.
    pub fn set_tray(&self, view: &TrayView, extras: Extras, shown: Option<&(TrayView, Extras)>) {
        let counts_only = tray::counts_only(shown, view, extras);
        self.send(UserEvent::Tray { view: Box::new(view.clone()), extras, counts_only });
    }

    /// A desktop notification (the notification server is called on a thread of its own).
    pub fn notify(&self, title: &str, body: &str) {
        let (title, body) = (title.to_string(), body.to_string());
        let shown = std::thread::Builder::new().name("notification".into()).spawn(move || {
            let result = notify_rust::Notification::new().appname(APP_NAME).summary(&title).body(&body).show();
            if let Err(e) = result {
                tracing::debug!("cannot show a notification: {e}");
            }
        });
        if let Err(e) = shown {
            tracing::debug!("cannot show a notification: {e}");
        }
    }

    /// Whether Start at login is on.
    pub fn autostart(&self) -> Result<bool, String> {
        self.0.autostart.as_ref().map_err(Clone::clone)?.is_enabled().map_err(|e| e.to_string())
    }

    /// Turns Start at login on or off.
    pub fn set_autostart(&self, on: bool) -> Result<(), String> {
        let entry = self.0.autostart.as_ref().map_err(Clone::clone)?;
        if on { entry.enable() } else { entry.disable() }.map_err(|e| e.to_string())
    }

    /// Leaves the event loop; the process exits with `code`.
    pub fn exit(&self, code: i32) {
        self.send(UserEvent::Exit(code));
    }
}

/// Runs the tray app until it quits. Returns at once (status 0) when another instance is running: it got this
/// launch's arguments.
pub fn run(launched: Instant) -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let connection = match single_instance::claim(&args) {
        single_instance::Claim::Forwarded => {
            tracing::info!("LLM Gateway is already running: this launch was handed over to it");
            return Ok(());
        }
        single_instance::Claim::Failed(e) => return Err(e),
        single_instance::Claim::Owner(connection) => Some(connection),
        single_instance::Claim::Unavailable => None,
    };
    let event_loop = EventLoopBuilder::<UserEvent>::with_user_event().build();
    let shell = Shell::new(event_loop.create_proxy());
    let tasks = app::task_runtime().map_err(|e| format!("cannot start the app's runtime: {e}"))?;
    let app = app::start(shell.clone(), tasks, launched).map_err(|e| format!("cannot start the gateway: {e}"))?;
    if let Some(connection) = &connection {
        let forward = shell.clone();
        single_instance::serve(connection, move |argv| forward.send(UserEvent::SecondLaunch(argv)));
    }
    let menu_events = shell.clone();
    MenuEvent::set_event_handler(Some(move |event: MenuEvent| menu_events.send(UserEvent::Menu(event.id.0))));
    // Registering the scheme runs xdg-mime and update-desktop-database: not on the UI thread.
    let registered = std::thread::Builder::new().name("link-handler".into()).spawn(|| match register_link_handler() {
        Ok(()) => tracing::info!("registered the llm-gateway:// link handler"),
        Err(e) => tracing::warn!("cannot register the llm-gateway:// link handler: {e}"),
    });
    if let Err(e) = registered {
        tracing::warn!("cannot register the llm-gateway:// link handler: {e}");
    }

    let mut indicator: Option<Tray> = None;
    event_loop.run(move |event, _, control_flow| {
        // The D-Bus name stays ours for the life of the loop.
        let _ = &connection;
        *control_flow = ControlFlow::Wait;
        match event {
            Event::NewEvents(StartCause::Init) => {
                let view = view::tray_view(&Phase::Starting, None, monitor::now_ms());
                let extras = Extras { autostart: shell.autostart().unwrap_or(false) };
                show(&mut indicator, &view, extras, false);
                app::after_tray(&app, &args);
            }
            Event::UserEvent(UserEvent::Tray { view, extras, counts_only }) => {
                show(&mut indicator, &view, extras, counts_only)
            }
            Event::UserEvent(UserEvent::Menu(id)) => feat::menu_item(&app, &id),
            Event::UserEvent(UserEvent::SecondLaunch(argv)) => feat::second_launch(&app, &argv, false),
            Event::UserEvent(UserEvent::Exit(code)) => {
                indicator = None;
                *control_flow = ControlFlow::ExitWithCode(code);
            }
            _ => {}
        }
    })
}

/// The tray icon and the menu line that changes with every request (updated in place: rebuilding the menu would
/// close it under the user's pointer).
struct Tray {
    icon: TrayIcon,
    counts: Option<MenuItem>,
}

/// Creates the tray icon or updates it (on the UI thread).
fn show(tray: &mut Option<Tray>, view: &TrayView, extras: Extras, counts_only: bool) {
    let result = match tray.as_mut() {
        Some(tray) if counts_only => {
            if let (Some(item), Some(counts)) = (&tray.counts, &view.counts) {
                item.set_text(counts);
            }
            tray.icon.set_tooltip(Some(&view.tooltip)).map_err(|e| e.to_string())
        }
        Some(tray) => {
            let (menu, counts) = menu(&tray::menu(view, extras));
            tray.icon.set_menu(Some(Box::new(menu)));
            tray.counts = counts;
            tray.icon
                .set_icon(state_icon(view))
                .and_then(|()| tray.icon.set_tooltip(Some(&view.tooltip)))
                .map_err(|e| e.to_string())
        }
        None => {
            let (menu, counts) = menu(&tray::menu(view, extras));
            let mut builder = TrayIconBuilder::new()
                .with_id("main")
                .with_title(APP_NAME)
                .with_tooltip(&view.tooltip)
                .with_menu(Box::new(menu))
                .with_menu_on_left_click(true);
            if let Some(image) = state_icon(view) {
                builder = builder.with_icon(image);
            }
            builder.build().map(|icon| *tray = Some(Tray { icon, counts })).map_err(|e| e.to_string())
        }
    };
    match result {
        Ok(()) => tray::log_shown(view, counts_only),
        Err(e) => tracing::warn!("cannot update the tray: {e}"),
    }
}

fn state_icon(view: &TrayView) -> Option<Icon> {
    let image = tray::icon(view.state);
    Icon::from_rgba(image.rgba.to_vec(), image.width, image.height)
        .map_err(|e| tracing::warn!("bad tray icon: {e}"))
        .ok()
}

/// The menu, and its counts line.
fn menu(entries: &[Entry]) -> (Menu, Option<MenuItem>) {
    let menu = Menu::new();
    let mut counts = None;
    for entry in entries {
        let appended = match entry {
            Entry::Line { id, text } => {
                let line = MenuItem::with_id(id.as_str(), text, false, None);
                if id == tray::item::COUNTS {
                    counts = Some(line.clone());
                }
                menu.append(&line)
            }
            Entry::Action { id, text, enabled } => menu.append(&MenuItem::with_id(*id, text, *enabled, None)),
            Entry::Check { id, text, checked } => menu.append(&CheckMenuItem::with_id(*id, text, true, *checked, None)),
            Entry::Separator => menu.append(&PredefinedMenuItem::separator()),
        };
        if let Err(e) = appended {
            tracing::warn!("cannot build the tray menu: {e}");
        }
    }
    (menu, counts)
}

/// The program a launcher should start: the AppImage when running from one, else this binary.
fn launcher_program() -> std::io::Result<PathBuf> {
    match std::env::var_os("APPIMAGE") {
        Some(path) if !path.is_empty() => Ok(PathBuf::from(path)),
        _ => std::env::current_exe(),
    }
}

/// The autostart entry (`~/.config/autostart/LLM Gateway.desktop`), starting the app in the tray.
fn autostart_entry() -> Result<auto_launch::AutoLaunch, String> {
    let program = launcher_program().map_err(|e| format!("cannot find this program's path: {e}"))?;
    auto_launch::AutoLaunchBuilder::new()
        .set_app_name(APP_NAME)
        .set_app_path(&program.to_string_lossy())
        .set_args(&[HIDDEN_ARG])
        .build()
        .map_err(|e| e.to_string())
}

/// Makes this program the handler of `llm-gateway://` links for the user: a `.desktop` file in the user's
/// applications folder (named like Tauri's deep-link plugin names it, so an earlier registration is updated),
/// then `update-desktop-database` and `xdg-mime default`.
fn register_link_handler() -> std::io::Result<()> {
    let program = launcher_program()?;
    let name = program.file_name().map_or_else(|| "llm-gateway-desktop".into(), |n| n.to_string_lossy().into_owned());
    let file_name = format!("{name}-handler.desktop");
    let dir = data_home()?.join("applications");
    std::fs::create_dir_all(&dir)?;
    let mime = format!("x-scheme-handler/{SCHEME}");
    let entry = format!(
        "[Desktop Entry]\nType=Application\nName={APP_NAME}\nExec=\"{}\" %u\nTerminal=false\nMimeType={mime};\n\
         NoDisplay=true\n",
        program.display()
    );
    let path = dir.join(&file_name);
    if std::fs::read_to_string(&path).ok().as_deref() != Some(entry.as_str()) {
        std::fs::write(&path, entry)?;
    }
    match Command::new("update-desktop-database").arg(&dir).status() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::warn!(
                "update-desktop-database not found (package desktop-file-utils); links may not open the app"
            );
        }
        Err(e) => return Err(e),
        Ok(status) if !status.success() => tracing::warn!("update-desktop-database failed ({status})"),
        Ok(_) => {}
    }
    let status = Command::new("xdg-mime").args(["default", &file_name, &mime]).status()?;
    if !status.success() {
        return Err(std::io::Error::other(format!("xdg-mime default failed ({status})")));
    }
    Ok(())
}

/// `$XDG_DATA_HOME`, else `~/.local/share`.
fn data_home() -> std::io::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").map(PathBuf::from).filter(|d| d.is_absolute()) {
        return Ok(dir);
    }
    std::env::var_os("HOME")
        .map(|home| PathBuf::from(home).join(".local/share"))
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "HOME is not set"))
}

/// One app per user session: the first launch owns a name on the session bus; a later one calls it with its
/// arguments (a deep link, `--hidden`, nothing) and exits 0. Without a session bus, each launch runs on its own
/// (the second then finds the port busy and says so).
mod single_instance {
    use zbus::blocking::Connection;
    use zbus::fdo::{RequestNameFlags, RequestNameReply};

    const NAME: &str = "dev.llm_gateway.desktop.SingleInstance";
    const PATH: &str = "/dev/llm_gateway/desktop/SingleInstance";

    /// How the claim went.
    pub enum Claim {
        /// This is the first instance; the connection holds the name.
        Owner(Connection),
        /// Another instance runs and has this launch's arguments now.
        Forwarded,
        /// Another instance holds the name but did not take the arguments.
        Failed(String),
        /// No session bus.
        Unavailable,
    }

    pub fn claim(args: &[String]) -> Claim {
        let connection = match Connection::session() {
            Ok(connection) => connection,
            Err(e) => {
                tracing::warn!("no D-Bus session bus ({e}): running without the single-instance check");
                return Claim::Unavailable;
            }
        };
        match connection.request_name_with_flags(NAME, RequestNameFlags::DoNotQueue.into()) {
            Ok(RequestNameReply::PrimaryOwner | RequestNameReply::AlreadyOwner) => Claim::Owner(connection),
            Ok(RequestNameReply::Exists | RequestNameReply::InQueue) | Err(zbus::Error::NameTaken) => {
                let cwd = std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default();
                match connection.call_method(Some(NAME), PATH, Some(NAME), "ExecuteCallback", &(args, cwd)) {
                    Ok(_) => Claim::Forwarded,
                    Err(e) => Claim::Failed(format!("LLM Gateway is already running but did not answer: {e}")),
                }
            }
            Err(e) => {
                tracing::warn!("cannot claim the single-instance name ({e}): running without it");
                Claim::Unavailable
            }
        }
    }

    struct Server(Box<dyn Fn(Vec<String>) + Send + Sync>);

    #[zbus::interface(name = "dev.llm_gateway.desktop.SingleInstance")]
    impl Server {
        fn execute_callback(&self, argv: Vec<String>, _cwd: String) {
            (self.0)(argv);
        }
    }

    /// Serves later launches: `forward` gets each one's arguments (on zbus's thread).
    pub fn serve(connection: &Connection, forward: impl Fn(Vec<String>) + Send + Sync + 'static) {
        if let Err(e) = connection.object_server().at(PATH, Server(Box::new(forward))) {
            tracing::warn!("cannot serve later launches over D-Bus: {e}");
        }
    }
}
