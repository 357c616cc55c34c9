//! The Rust toolchain and build tools Tessera needs: a wasm32 standard library and the
//! wasm-bindgen CLI of exactly the version pinned in Cargo.toml.
//!
//! `rustup target add` needs rustup's download server. Where that is unreachable, the wasm32
//! std is built from Debian's `rustc-web` 1.96 (a complete rustc with its source) and linked
//! into rustup as the toolchain `tessera-web`; the whole project then builds with it, because
//! 1.96 rlibs can't be mixed with another compiler's. The result is cached outside the clone.

use crate::util::{self, run, step, succeeds, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

const FALLBACK_TOOLCHAIN: &str = "tessera-web";
const DEBIAN_PACKAGES: [&str; 5] = ["rustc-web", "rust-web-src", "libstd-rust-web-1.96", "libstd-rust-web-dev", "libllvm22"];

/// The toolchain to pass as `cargo +<name>`, or `None` for the default one.
pub fn ensure_wasm_toolchain() -> Result<Option<String>> {
    if let Ok(name) = std::env::var("TESSERA_TOOLCHAIN") {
        return Ok(Some(name).filter(|n| !n.is_empty()));
    }
    let forced = std::env::var("TESSERA_FORCE_WASM_FALLBACK").is_ok_and(|v| v == "1");
    if !forced {
        if default_has_wasm32() {
            return Ok(None);
        }
        step("Adding the wasm32-unknown-unknown target with rustup");
        let added = Command::new("timeout").args(["120", "rustup", "target", "add", "wasm32-unknown-unknown"]).status().is_ok_and(|s| s.success());
        if added && default_has_wasm32() {
            return Ok(None);
        }
        step("rustup could not add the target; using the Debian rustc-web fallback");
    }
    let prefix = util::cache_dir().join("rustc-web-1.96");
    if !prefix.join(".complete").exists() {
        build_fallback(&prefix)?;
    }
    if !succeeds(Command::new("rustc").arg(format!("+{FALLBACK_TOOLCHAIN}")).arg("--version")) {
        run(Command::new("rustup").args(["toolchain", "link", FALLBACK_TOOLCHAIN]).arg(prefix.join("usr")))?;
    }
    Ok(Some(FALLBACK_TOOLCHAIN.to_string()))
}

fn default_has_wasm32() -> bool {
    let sysroot = util::output(Command::new("rustc").args(["--print", "sysroot"])).unwrap_or_default();
    Path::new(&sysroot).join("lib/rustlib/wasm32-unknown-unknown/lib").is_dir()
}

fn build_fallback(prefix: &Path) -> Result {
    step("Building the wasm32 standard library from Debian's rustc-web 1.96 (once; cached)");
    let _ = std::fs::remove_dir_all(prefix);
    let work = prefix.with_extension("work");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;

    let download = |w: &Path| Command::new("apt-get").arg("download").args(DEBIAN_PACKAGES).current_dir(w).status().is_ok_and(|s| s.success());
    if !download(&work) {
        run(Command::new("apt-get").args(["update", "-q"]))?;
        if !download(&work) {
            return Err("apt-get download of the rustc-web packages failed".into());
        }
    }
    for entry in std::fs::read_dir(&work).map_err(|e| e.to_string())? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.extension().is_some_and(|e| e == "deb") {
            run(Command::new("dpkg").arg("-x").arg(&path).arg(prefix))?;
        }
    }
    // rustc-web's shared libraries live in the multiarch folder; rustc looks next to itself.
    let usr = prefix.join("usr");
    let multiarch = usr.join("lib/x86_64-linux-gnu");
    for entry in std::fs::read_dir(&multiarch).map_err(|e| e.to_string())? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.contains(".so")) {
            let link = usr.join("lib").join(path.file_name().unwrap());
            if !link.exists() {
                symlink(&path, &link)?;
            }
        }
    }
    // The wasm32 linker: rustup's rust-lld from the default toolchain.
    let sysroot = util::output(Command::new("rustc").args(["--print", "sysroot"]))?;
    let lld = Path::new(&sysroot).join("lib/rustlib/x86_64-unknown-linux-gnu/bin/rust-lld");
    let bin = usr.join("lib/rustlib/x86_64-unknown-linux-gnu/bin");
    std::fs::create_dir_all(&bin).map_err(|e| e.to_string())?;
    symlink(&lld, &bin.join("rust-lld"))?;
    // Debian points the std sources at /usr/src; inside the prefix, point at the prefix's copy.
    let src_link = usr.join("lib/rustlib/src/rust");
    if !src_link.join("library").is_dir() {
        let src = find_rust_src(&usr.join("src")).ok_or("rust-web-src did not contain the std sources")?;
        let _ = std::fs::remove_file(&src_link);
        std::fs::create_dir_all(src_link.parent().unwrap()).map_err(|e| e.to_string())?;
        symlink(&src, &src_link)?;
    }

    // Build std for wasm32 once, from a tiny crate, and install its rlibs into the sysroot.
    let krate = work.join("std-builder");
    std::fs::create_dir_all(krate.join("src")).map_err(|e| e.to_string())?;
    std::fs::write(krate.join("Cargo.toml"), "[package]\nname = \"std-builder\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n[workspace]\n")
        .map_err(|e| e.to_string())?;
    std::fs::write(krate.join("src/lib.rs"), "pub fn noop() {}\n").map_err(|e| e.to_string())?;
    let rustc = usr.join("bin/rustc");
    run(Command::new("cargo")
        .args(["build", "-Zbuild-std=std,panic_abort", "--target", "wasm32-unknown-unknown", "--release"])
        .current_dir(&krate)
        .env("RUSTC_BOOTSTRAP", "1")
        .env("RUSTC", &rustc)
        // Debian's rustc has no RUNPATH; rustup would set this for a linked toolchain.
        .env("LD_LIBRARY_PATH", usr.join("lib"))
        .env("CARGO_TARGET_DIR", krate.join("target"))
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTUP_TOOLCHAIN"))?;
    let deps = krate.join("target/wasm32-unknown-unknown/release/deps");
    let dest = usr.join("lib/rustlib/wasm32-unknown-unknown/lib");
    std::fs::create_dir_all(&dest).map_err(|e| e.to_string())?;
    for entry in std::fs::read_dir(&deps).map_err(|e| e.to_string())? {
        let path = entry.map_err(|e| e.to_string())?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if name.starts_with("lib") && name.ends_with(".rlib") && !name.starts_with("libstd_builder") {
            std::fs::copy(&path, dest.join(name)).map_err(|e| e.to_string())?;
        }
    }
    let _ = Command::new("rustup").args(["toolchain", "uninstall", FALLBACK_TOOLCHAIN]).status();
    run(Command::new("rustup").args(["toolchain", "link", FALLBACK_TOOLCHAIN]).arg(&usr))?;
    std::fs::write(prefix.join(".complete"), "ok\n").map_err(|e| e.to_string())?;
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

fn find_rust_src(dir: &Path) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()? {
        let path = entry.ok()?.path();
        if path.join("library/std").is_dir() {
            return Some(path);
        }
    }
    None
}

fn symlink(target: &Path, link: &Path) -> Result {
    let _ = std::fs::remove_file(link);
    std::os::unix::fs::symlink(target, link).map_err(|e| format!("symlink {} -> {}: {e}", link.display(), target.display()))
}

/// The wasm-bindgen version pinned in the workspace Cargo.toml (`wasm-bindgen = "=X"`).
pub fn pinned_wasm_bindgen() -> Result<String> {
    let manifest = std::fs::read_to_string(util::root().join("Cargo.toml")).map_err(|e| e.to_string())?;
    manifest
        .lines()
        .find_map(|l| l.trim().strip_prefix("wasm-bindgen = \"="))
        .and_then(|rest| rest.split('"').next())
        .map(str::to_string)
        .ok_or_else(|| "Cargo.toml must pin wasm-bindgen as `wasm-bindgen = \"=X.Y.Z\"`".into())
}

/// The wasm-bindgen CLI matching the pinned crate, installed into the cache on first use.
pub fn ensure_wasm_bindgen() -> Result<PathBuf> {
    let version = pinned_wasm_bindgen()?;
    let root = util::cache_dir().join(format!("wasm-bindgen-{version}"));
    let bin = root.join("bin/wasm-bindgen");
    if bin.is_file() {
        return Ok(bin);
    }
    if let Some(on_path) = util::which("wasm-bindgen") {
        if util::output(Command::new(&on_path).arg("--version")).is_ok_and(|v| v.ends_with(&version)) {
            return Ok(on_path);
        }
    }
    step(&format!("Installing wasm-bindgen-cli {version} (once; cached)"));
    // Not --locked: its lock file names crate versions this registry mirror may not have.
    run(Command::new("cargo")
        .args(["install", "wasm-bindgen-cli", "--version", &version, "--root"])
        .arg(&root)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .current_dir(util::cache_dir()))?;
    Ok(bin)
}
