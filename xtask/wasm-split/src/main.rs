//! `tessera-wasm-split <cargo's .wasm> <pkg dir> <main module out>`
//!
//! Splits the hydration bundle at its `#[lazy]` points (every page, see `app/src/routes.rs`):
//! each page's code goes to its own module in `<pkg dir>`, code shared by some pages to shared
//! chunks, and what every page needs stays in the main module, which wasm-bindgen then
//! processes as usual. Also writes the two files Leptos reads: the loader the main module
//! imports and the manifest the server uses to preload the current page's chunks.
//!
//! It must run on every build, debug too: an unsplit bundle with lazy points imports a
//! placeholder module that doesn't exist.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The loader's name Leptos' `HydrationScripts` expects (cargo-leptos' convention).
const LOADER: &str = "./__wasm_split.______________________.js";
const MANIFEST: &str = "__wasm_split_manifest.json";

/// What the loader does when a page's code can't be loaded, in place of only logging it.
const ON_FAILED_LOAD: (&str, &str) =
    ("console.error(e);\n            success = false;", "console.error(e);\n            success = false;\n            reloadOnceAfterFailedLoad();");

/// Loads the page afresh when a page's code couldn't be fetched: after a deploy, a page
/// opened before it asks for chunks of a build that is gone (the server keeps two), and a new
/// load gets the current build's. The router changes the address only once the new page's code
/// is there, so the load goes to the link just followed (back and forward have already changed
/// the address). At most once a minute, so a server that is down doesn't cause a reload loop;
/// the failure stays logged.
const RELOAD_ONCE: &str = r#"
let lastLinkFollowed = null;
document.addEventListener("click", (event) => {
    const link = event.target instanceof Element ? event.target.closest("a[href]") : null;
    if (link && link.origin === location.origin) lastLinkFollowed = { href: link.href, at: Date.now() };
}, true);
function reloadOnceAfterFailedLoad() {
    try {
        const key = "tessera-reloaded-after-failed-load";
        const last = Number(sessionStorage.getItem(key) || 0);
        if (Date.now() - last < 60000) return;
        sessionStorage.setItem(key, String(Date.now()));
    } catch (_) {
        return;
    }
    const followed = lastLinkFollowed && Date.now() - lastLinkFollowed.at < 30000 ? lastLinkFollowed.href : null;
    location.assign(followed || location.href);
}
"#;

fn main() -> ExitCode {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [input, pkg, main_out] = args.as_slice() else {
        eprintln!("usage: tessera-wasm-split <input.wasm> <pkg dir> <main module out>");
        return ExitCode::from(2);
    };
    match split(input, pkg, main_out) {
        Ok(chunks) => {
            println!("split into the main module and {chunks} chunks");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("wasm-split: {e:?}");
            ExitCode::FAILURE
        }
    }
}

fn split(input: &Path, pkg: &Path, main_out: &Path) -> Result<usize, Box<dyn std::error::Error>> {
    let wasm = std::fs::read(input).map_err(|e| format!("{}: {e}", input.display()))?;
    let mut options = wasm_split_cli_support::Options::new(&wasm);
    options.output_dir = pkg;
    options.main_out_path = main_out;
    options.link_name = LOADER;
    // The loader imports `initSync` from wasm-bindgen's JS, which sits beside it.
    options.main_module = "./tessera.js";
    options.target.web();
    let split = wasm_split_cli_support::transform(options).map_err(|e| format!("{e:?}"))?;
    std::fs::write(pkg.join(MANIFEST), serde_json::to_string(&split.prefetch_map)?)?;
    reload_after_failed_loads(&pkg.join(LOADER))?;
    Ok(split.split_modules.len())
}

/// Makes the generated loader reload the page when a page's code fails to load (see
/// [`RELOAD_ONCE`]). The loader's text is wasm_split_cli_support's (pinned), so a change there
/// fails the build here rather than silently dropping the reload.
fn reload_after_failed_loads(loader: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let js = std::fs::read_to_string(loader).map_err(|e| format!("{}: {e}", loader.display()))?;
    let (failed, reload) = ON_FAILED_LOAD;
    if js.matches(failed).count() != 1 {
        return Err(format!("{}: the loader's failure branch changed; update ON_FAILED_LOAD", loader.display()).into());
    }
    std::fs::write(loader, format!("{}{RELOAD_ONCE}", js.replacen(failed, reload, 1)))?;
    Ok(())
}
