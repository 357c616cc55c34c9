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
    Ok(split.split_modules.len())
}
