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
        // RUSTFLAGS would replace .cargo/config.toml's flags, which the WASM split needs.
        cmd.current_dir(util::root()).env_remove("RUSTUP_TOOLCHAIN").env_remove("RUSTC").env_remove("RUSTFLAGS");
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
        let out_dir = Self::target_dir().join("wasm32-unknown-unknown").join(if release { "wasm-release" } else { "debug" });
        let site = Self::site_root();
        let pkg = site.join("pkg");
        clear_except_recent_builds(&pkg)?;
        // Every page is a lazy route (app/src/routes.rs): its code goes to chunks of its own,
        // and wasm-bindgen processes what stays in the main module.
        step("Splitting the bundle into a main module and per-page chunks");
        run(self.cargo().args(["build", "--quiet", "-p", "tessera-wasm-split"]))?;
        let main_module = out_dir.join("tessera_frontend_split.wasm");
        run(Command::new(Self::target_dir().join("debug/tessera-wasm-split"))
            .arg(out_dir.join("tessera_frontend.wasm"))
            .arg(&pkg)
            .arg(&main_module))?;
        run(Command::new(&self.wasm_bindgen)
            .arg(&main_module)
            // The chunks link against the main module's own exports, under their own names.
            .args(["--keep-lld-exports", "--no-demangle"])
            .args(["--target", "web", "--no-typescript", "--out-name", "tessera", "--out-dir"])
            .arg(&pkg))?;
        // The server is compiled with LEPTOS_OUTPUT_NAME set, so it links `/pkg/tessera.wasm`.
        std::fs::rename(pkg.join("tessera_bg.wasm"), pkg.join("tessera.wasm")).map_err(|e| e.to_string())?;
        if release {
            // Function names are for debuggers; they are nearly half of each file. (wasm-opt
            // isn't run: measured on this bundle, -Oz/-Os/-O2 shrink the raw file but make
            // the gzip and brotli forms, which are what travels, larger.)
            for wasm in files_in(&pkg, ".wasm")? {
                strip_custom_sections(&wasm)?;
            }
        }
        std::fs::copy(util::root().join("style/main.css"), pkg.join("tessera.css")).map_err(|e| e.to_string())?;
        version_assets(&pkg, release)?;
        copy_dir(&util::root().join("public"), &site)
    }
}

/// Empties `pkg` but for the two most recent builds' folders: a page opened before a deploy
/// still finds the chunks of pages it hasn't visited yet (they load on first visit).
fn clear_except_recent_builds(pkg: &Path) -> Result {
    std::fs::create_dir_all(pkg).map_err(|e| e.to_string())?;
    let mut builds = Vec::new();
    for entry in std::fs::read_dir(pkg).map_err(|e| format!("{}: {e}", pkg.display()))? {
        let entry = entry.map_err(|e| e.to_string())?;
        let path = entry.path();
        let hash_named = path.file_name().is_some_and(|n| n.len() == 16 && n.to_string_lossy().chars().all(|c| c.is_ascii_hexdigit()));
        if path.is_dir() && hash_named {
            let modified = entry.metadata().and_then(|m| m.modified()).unwrap_or(std::time::UNIX_EPOCH);
            builds.push((modified, path));
        } else if path.is_dir() {
            std::fs::remove_dir_all(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        } else {
            std::fs::remove_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    builds.sort();
    for (_, old) in builds.iter().rev().skip(2) {
        std::fs::remove_dir_all(old).map_err(|e| format!("{}: {e}", old.display()))?;
    }
    Ok(())
}

/// The files directly in `dir` whose names end with `suffix`, sorted.
fn files_in(dir: &Path, suffix: &str) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.is_file() && path.file_name().is_some_and(|n| n.to_string_lossy().ends_with(suffix)) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Drops a WASM file's custom sections that only tools read (`name`, `producers`,
/// `target_features`); code, data and the sections the loaders need are untouched.
fn strip_custom_sections(path: &Path) -> Result {
    const DROP: [&[u8]; 3] = [b"name", b"producers", b"target_features"];
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let bad = || format!("{}: not a WASM module", path.display());
    if bytes.get(..8) != Some(b"\0asm\x01\0\0\0".as_slice()) {
        return Err(bad());
    }
    // An unsigned LEB128 at `at`: its value and where the next field starts.
    let leb = |mut at: usize| -> Option<(usize, usize)> {
        let (mut value, mut shift) = (0usize, 0);
        loop {
            let byte = *bytes.get(at)?;
            at += 1;
            // Section sizes fit in 32 bits (five bytes of LEB128).
            if shift > 28 {
                return None;
            }
            value |= usize::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                return Some((value, at));
            }
        }
    };
    let mut out = bytes[..8].to_vec();
    let mut at = 8;
    while at < bytes.len() {
        let id = bytes[at];
        let (size, body) = leb(at + 1).ok_or_else(bad)?;
        let end = body.checked_add(size).filter(|&e| e <= bytes.len()).ok_or_else(bad)?;
        let name_of = |(len, name): (usize, usize)| name.checked_add(len).filter(|&e| e <= end).map(|e| &bytes[name..e]);
        let dropped = id == 0 && leb(body).and_then(name_of).is_some_and(|name| DROP.contains(&name));
        if !dropped {
            out.extend_from_slice(&bytes[at..end]);
        }
        at = end;
    }
    std::fs::write(path, out).map_err(|e| format!("{}: {e}", path.display()))
}

/// The bundle (main module, per-page chunks, their loaders and manifest) and the stylesheet go
/// into `pkg/<hash of their contents>/`, each beside its gzip and brotli forms, and
/// `pkg/current` names that folder: browsers may keep them forever (a new build is a new
/// address), and the server sends the compressed form a browser accepts without compressing
/// anything per request. The stylesheet also stays at `pkg/tessera.css` for pages outside the
/// app (the API reference), which revalidate it.
fn version_assets(pkg: &Path, release: bool) -> Result {
    let files = files_in(pkg, "")?;
    let hash = content_hash(&files)?;
    let versioned = pkg.join(&hash);
    std::fs::create_dir_all(&versioned).map_err(|e| e.to_string())?;
    // wasm-bindgen's snippets (JS a dependency inlines) load relative to the loader.
    if pkg.join("snippets").is_dir() {
        std::fs::rename(pkg.join("snippets"), versioned.join("snippets")).map_err(|e| e.to_string())?;
    }
    let mut moved = Vec::new();
    for file in &files {
        let to = versioned.join(file.file_name().ok_or("a file without a name")?);
        if to.ends_with("tessera.css") {
            std::fs::copy(file, &to).map_err(|e| e.to_string())?;
        } else {
            std::fs::rename(file, &to).map_err(|e| e.to_string())?;
        }
        moved.push(to);
    }
    // Debug bundles are ten times larger and rebuilt often: compress them quickly.
    let (gzip_level, brotli_level) = if release { ("-9", "11") } else { ("-6", "5") };
    run(Command::new("gzip").args([gzip_level, "-k", "-f", "-n"]).args(&moved))?;
    if util::which("brotli").is_some() || util::apt_install(&["brotli"]).is_ok() {
        run(Command::new("brotli").args(["-q", brotli_level, "-k", "-f"]).args(&moved))?;
    } else {
        step("brotli unavailable: the assets get gzip forms only");
    }
    std::fs::write(pkg.join("current"), &hash).map_err(|e| e.to_string())
}

/// The first 16 hex digits of the SHA-256 of `files`' names and contents, one after the other.
fn content_hash(files: &[PathBuf]) -> Result<String> {
    use std::io::Write;
    let mut bytes = Vec::new();
    for file in files {
        bytes.extend(file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default().as_bytes());
        bytes.push(0);
        bytes.extend(std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?);
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
