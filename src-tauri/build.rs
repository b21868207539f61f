//! Tauri's build step (the bundled page, capabilities, icons for the window) and the tray icons decoded once here
//! (RGBA for both tray implementations, so neither needs an image decoder at run time).

use std::path::Path;

const TRAY_ICONS: [(&str, &str); 4] =
    [("OK", "tray-ok"), ("DEGRADED", "tray-degraded"), ("DOWN", "tray-down"), ("PAUSED", "tray-paused")];

fn main() {
    tray_icons();
    tauri_build::build()
}

/// `icons/tray-*.png` as RGBA arrays in `$OUT_DIR/tray_icons.rs` (`pub const OK: Rgba = …`).
fn tray_icons() {
    let out = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("tray_icons.rs");
    let mut code = String::new();
    for (name, file) in TRAY_ICONS {
        let path = format!("icons/{file}.png");
        println!("cargo:rerun-if-changed={path}");
        let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&path).expect(&path)));
        let mut reader = decoder.read_info().expect("a PNG");
        let mut rgba = vec![0; reader.output_buffer_size().expect("a PNG of a sane size")];
        let info = reader.next_frame(&mut rgba).expect("the PNG decodes");
        assert_eq!(info.color_type, png::ColorType::Rgba, "{path} must be 8-bit RGBA");
        rgba.truncate(info.buffer_size());
        code.push_str(&format!(
            "pub const {name}: Rgba = Rgba {{ width: {}, height: {}, rgba: &{:?} }};\n",
            info.width, info.height, rgba
        ));
    }
    std::fs::write(out, code).expect("write tray_icons.rs");
}
