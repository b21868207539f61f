//! Dependencies between the library's modules point one way (ARCHITECTURE.md): a module may use only modules of a
//! lower layer. This test reads every source file and fails on an import against that order, naming the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The layers, bottom first; modules of one layer may not use each other either.
const LAYERS: &[&[&str]] = &[
    &["clock", "common", "tasks"],
    &["config"],
    &["secrets"],
    &["accounts"],
    &["transform", "router", "upstream", "usage", "claude_code"],
    &["gateway"],
    &["proxy", "manage"],
    &["client"],
    &["app"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules a source text names through `crate::…`, including `use crate::{a, b::c}` groups.
fn crate_modules(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            let mut depth = 1usize;
            let mut item = String::new();
            let mut items = Vec::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => items.push(std::mem::take(&mut item)),
                    _ if depth == 1 => item.push(c),
                    _ => {}
                }
            }
            items.push(item);
            for item in items {
                let name: String = item.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if !name.is_empty() {
                    found.push(name);
                }
            }
        } else {
            let name: String = after.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if !name.is_empty() {
                found.push(name);
            }
        }
        rest = after;
    }
    found
}

/// The module a file belongs to: `src/proxy/mod.rs` → `proxy`, `src/clock.rs` → `clock`.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src).ok()?;
    let first = relative.components().next()?.as_os_str().to_str()?;
    Some(first.trim_end_matches(".rs").to_string())
}

#[test]
fn modules_import_only_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut violations: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut seen_modules = 0;
    for file in &files {
        let Some(module) = module_of(&src, file) else { continue };
        // The binary's own files (main.rs and its helpers) use the library through its public façade.
        let Some(own) = layer_of(&module) else { continue };
        seen_modules += 1;
        let text = std::fs::read_to_string(file).expect("source file readable");
        for used in crate_modules(&text) {
            // Items re-exported at the crate root (`crate::GatewayHandle` in a doc link) are the façade, not a layer.
            if used == module || used.starts_with(|c: char| c.is_uppercase()) {
                continue;
            }
            let allowed = layer_of(&used).is_some_and(|layer| layer < own);
            if !allowed {
                let name = file.strip_prefix(&src).unwrap_or(file).display().to_string();
                violations.entry(name).or_default().push(used);
            }
        }
    }
    assert!(seen_modules > 50, "the source tree was found and read ({seen_modules} files)");
    assert!(
        violations.is_empty(),
        "imports against the layer order (ARCHITECTURE.md, tests/architecture.rs LAYERS): {violations:#?}"
    );
}

/// The library's modules as `lib.rs` declares them: `mod x;` lines and the `internal_modules!(…)` list, each with
/// whether it is internal.
fn library_modules() -> Vec<(String, bool)> {
    let lib = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).expect("lib.rs");
    let mut modules = Vec::new();
    for line in lib.lines() {
        let line = line.trim();
        if let Some(list) = line.strip_prefix("internal_modules!(").and_then(|rest| rest.strip_suffix(");")) {
            modules.extend(list.split(',').map(str::trim).filter(|n| !n.is_empty()).map(|n| (n.to_string(), true)));
            continue;
        }
        let declared = ["pub mod ", "mod ", "pub(crate) mod "].iter().find_map(|p| line.strip_prefix(p));
        if let Some(name) = declared.and_then(|rest| rest.strip_suffix(';')).filter(|n| !n.starts_with('$')) {
            modules.push((name.to_string(), !line.starts_with("pub mod ")));
        }
    }
    modules
}

#[test]
fn every_library_module_has_a_layer() {
    let modules = library_modules();
    assert!(modules.len() > 10, "lib.rs read: {modules:?}");
    for (name, _) in &modules {
        assert!(layer_of(name).is_some(), "module `{name}` is in no layer of tests/architecture.rs");
    }
}

/// The front doors (the CLI binary's files and the desktop app) use the library's façade only: no internal module
/// by path. (The compiler enforces it too when they build without the `internals` feature; this names the file.)
#[test]
fn front_doors_use_only_the_facade() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let internal: Vec<String> = library_modules().into_iter().filter(|(_, i)| *i).map(|(n, _)| n).collect();
    assert!(internal.iter().any(|n| n == "proxy"), "{internal:?}");
    let mut files = Vec::new();
    rust_files(&root.join("src-tauri/src"), &mut files);
    let lib_dirs: Vec<PathBuf> = library_modules().iter().map(|(n, _)| root.join("src").join(n)).collect();
    for entry in std::fs::read_dir(root.join("src")).expect("src").flatten() {
        let path = entry.path();
        let is_library_file = path.file_name().is_some_and(|f| f == "lib.rs")
            || lib_dirs.iter().any(|d| path == *d || path == d.with_extension("rs"));
        if path.extension().is_some_and(|e| e == "rs") && !is_library_file {
            files.push(path);
        }
    }
    assert!(files.iter().any(|f| f.ends_with("src/main.rs")), "{files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable");
        for module in &internal {
            let path = format!("llm_gateway::{module}::");
            assert!(
                !text.contains(&path),
                "{} uses `{path}…`, an internal module: use what lib.rs or `manage` exports",
                file.display()
            );
        }
    }
}

#[test]
fn the_import_reader_sees_groups_and_paths() {
    let text = "use crate::{config::{self, Config}, secrets::Secret};\nlet x = crate::clock::now();";
    assert_eq!(crate_modules(text), ["config", "secrets", "clock"]);
}
