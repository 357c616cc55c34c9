//! Builds what a browser downloads: the server binary, the WASM hydration bundle (through the
//! wasm-bindgen CLI, as cargo-leptos would) and the stylesheet and public assets.

use crate::util::{self, run, step, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Build {
    pub toolchain: Option<String>,
    pub wasm_bindgen: PathBuf,
}

impl Build {
    pub fn cargo(&self) -> Command {
        let mut cmd = Command::new("cargo");
        if let Some(tc) = &self.toolchain {
            cmd.arg(format!("+{tc}"));
        }
        cmd.current_dir(util::root()).env_remove("RUSTUP_TOOLCHAIN").env_remove("RUSTC");
        cmd
    }

    pub fn target_dir() -> PathBuf {
        std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| util::root().join("target"))
    }

    pub fn site_root() -> PathBuf {
        util::root().join("target/site")
    }

    pub fn server_binary(release: bool) -> PathBuf {
        Self::target_dir().join(if release { "release" } else { "debug" }).join("tessera-server")
    }

    pub fn server(&self, release: bool) -> Result {
        step("Building the server");
        let mut cmd = self.cargo();
        cmd.args(["build", "-p", "tessera-server"]);
        if release {
            cmd.arg("--release");
        }
        run(&mut cmd)
    }

    /// Builds the WASM bundle and lays out `target/site`.
    pub fn site(&self, release: bool) -> Result {
        step("Building the WASM hydration bundle");
        let profile = if release { "wasm-release" } else { "dev" };
        run(self.cargo().args(["build", "-p", "tessera-frontend", "--lib", "--target", "wasm32-unknown-unknown", "--profile", profile]))?;
        let out_dir = if release { "wasm-release" } else { "debug" };
        let wasm = Self::target_dir().join("wasm32-unknown-unknown").join(out_dir).join("tessera_frontend.wasm");
        let site = Self::site_root();
        let pkg = site.join("pkg");
        let _ = std::fs::remove_dir_all(&pkg);
        std::fs::create_dir_all(&pkg).map_err(|e| e.to_string())?;
        run(Command::new(&self.wasm_bindgen)
            .arg(&wasm)
            .args(["--target", "web", "--no-typescript", "--out-name", "tessera", "--out-dir"])
            .arg(&pkg))?;
        // The server is compiled with LEPTOS_OUTPUT_NAME set, so it links `/pkg/tessera.wasm`.
        std::fs::rename(pkg.join("tessera_bg.wasm"), pkg.join("tessera.wasm")).map_err(|e| e.to_string())?;
        if release {
            optimize_wasm(&pkg.join("tessera.wasm"));
        }
        std::fs::copy(util::root().join("style/main.css"), pkg.join("tessera.css")).map_err(|e| e.to_string())?;
        version_assets(&pkg)?;
        copy_dir(&util::root().join("public"), &site)
    }
}

/// The bundle, its loader and the stylesheet go into `pkg/<hash of their contents>/`, each
/// beside its gzip and brotli forms, and `pkg/current` names that folder: browsers may keep
/// them forever (a new build is a new address), and the server sends the compressed form a
/// browser accepts without compressing anything per request. The stylesheet also stays at
/// `pkg/tessera.css` for pages outside the app (the API reference), which revalidate it.
fn version_assets(pkg: &Path) -> Result {
    const FILES: [&str; 3] = ["tessera.js", "tessera.wasm", "tessera.css"];
    let hash = content_hash(pkg, &FILES)?;
    let versioned = pkg.join(&hash);
    std::fs::create_dir_all(&versioned).map_err(|e| e.to_string())?;
    // wasm-bindgen's snippets (JS a dependency inlines) load relative to the loader.
    if pkg.join("snippets").is_dir() {
        std::fs::rename(pkg.join("snippets"), versioned.join("snippets")).map_err(|e| e.to_string())?;
    }
    let brotli = util::which("brotli").is_some() || util::apt_install(&["brotli"]).is_ok();
    if !brotli {
        step("brotli unavailable: the assets get gzip forms only");
    }
    for file in FILES {
        let to = versioned.join(file);
        if file == "tessera.css" {
            std::fs::copy(pkg.join(file), &to).map_err(|e| e.to_string())?;
        } else {
            std::fs::rename(pkg.join(file), &to).map_err(|e| e.to_string())?;
        }
        run(Command::new("gzip").args(["-9", "-k", "-f", "-n"]).arg(&to))?;
        if brotli {
            run(Command::new("brotli").args(["-q", "11", "-k", "-f"]).arg(&to))?;
        }
    }
    std::fs::write(pkg.join("current"), &hash).map_err(|e| e.to_string())
}

/// The first 16 hex digits of the SHA-256 of `files` (in `dir`) one after the other.
fn content_hash(dir: &Path, files: &[&str]) -> Result<String> {
    use std::io::Write;
    let mut bytes = Vec::new();
    for file in files {
        bytes.extend(std::fs::read(dir.join(file)).map_err(|e| format!("{file}: {e}"))?);
    }
    let mut sha = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("sha256sum: {e}"))?;
    sha.stdin.take().ok_or("sha256sum: no stdin")?.write_all(&bytes).map_err(|e| e.to_string())?;
    let out = sha.wait_with_output().map_err(|e| e.to_string())?;
    let hash: String = String::from_utf8_lossy(&out.stdout).chars().take(16).collect();
    if !out.status.success() || hash.len() != 16 || !hash.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err("hashing the assets failed".into());
    }
    Ok(hash)
}

/// Runs wasm-opt when available (npm `binaryen`; Debian's 108 breaks hydration, so not that).
fn optimize_wasm(wasm: &Path) {
    let Some(wasm_opt) = std::env::var_os("TESSERA_WASM_OPT").map(PathBuf::from) else {
        step("TESSERA_WASM_OPT not set: skipping wasm-opt");
        return;
    };
    let optimized = wasm.with_extension("opt.wasm");
    let ok = Command::new(wasm_opt)
        .arg("-Oz")
        .arg("--enable-bulk-memory")
        .arg("--enable-nontrapping-float-to-int")
        .arg(wasm)
        .arg("-o")
        .arg(&optimized)
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        let _ = std::fs::rename(&optimized, wasm);
    }
}

fn copy_dir(from: &Path, to: &Path) -> Result {
    std::fs::create_dir_all(to).map_err(|e| e.to_string())?;
    for entry in std::fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))? {
        let entry = entry.map_err(|e| e.to_string())?;
        let dest = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &dest)?;
        } else {
            std::fs::copy(entry.path(), dest).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}
