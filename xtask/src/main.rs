//! `cargo xtask dev` runs Tessera locally; `cargo xtask test` runs every test. Both install
//! what is missing first, so a fresh machine needs nothing but these commands.

mod postgres;
mod site;
mod toolchain;
mod util;

use postgres::Cluster;
use site::Build;
use std::path::PathBuf;
use std::process::{Child, Command};
use util::{run, step, Result};

const USAGE: &str = "usage: cargo xtask <command>

  dev         build and serve Tessera at http://127.0.0.1:3000 (own PostgreSQL unless DATABASE_URL is set)
  test        install what is missing, then run every Rust test and the Playwright suite
  setup       only install the toolchain and tools the other commands need
  bench       build in release mode and load-test the projects page (see README)
";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("dev") => dev(),
        Some("test") => test(),
        Some("setup") => setup().map(|_| ()),
        Some("bench") => bench(),
        _ => {
            eprint!("{USAGE}");
            std::process::exit(2);
        }
    };
    if let Err(e) = result {
        eprintln!("\x1b[1;31merror:\x1b[0m {e}");
        std::process::exit(1);
    }
}

fn setup() -> Result<Build> {
    let toolchain = toolchain::ensure_wasm_toolchain()?;
    let wasm_bindgen = toolchain::ensure_wasm_bindgen()?;
    Ok(Build { toolchain, wasm_bindgen })
}

/// Keeps the terminal's Ctrl-C from killing this process, so it can stop PostgreSQL after the
/// server (which does get the signal) has shut down.
fn ignore_ctrl_c() {
    extern "C" {
        fn signal(signum: i32, handler: usize) -> usize;
    }
    const SIGINT: i32 = 2;
    const SIG_IGN: usize = 1;
    // SAFETY: setting a signal disposition to "ignore" has no handler code to be unsafe.
    unsafe {
        signal(SIGINT, SIG_IGN);
    }
}

fn dev() -> Result {
    let build = setup()?;
    build.server(false)?;
    build.site(false)?;
    let mut server = Command::new(Build::server_binary(false));
    server.env("LEPTOS_SITE_ROOT", Build::site_root());
    let cluster = if std::env::var("DATABASE_URL").is_ok_and(|v| !v.is_empty()) {
        None
    } else {
        let data = util::root().join(".tessera/pgdata");
        let port = std::env::var("TESSERA_PG_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(54329);
        step(&format!("Starting PostgreSQL in {} on port {port}", data.display()));
        let cluster = Cluster::start(&data, port, false)?;
        server
            .env("DATABASE_URL", cluster.url("tessera_app", "tessera"))
            .env("DATABASE_OWNER_URL", cluster.url("tessera_owner", "tessera"))
            .env("TESSERA_SEED_DEMO", "1");
        Some(cluster)
    };
    step("Serving Tessera at http://127.0.0.1:3000 (Ctrl-C stops it; demo login: owner@acme.test / tessera-demo)");
    let mut child = server.spawn().map_err(|e| format!("could not start the server: {e}"))?;
    ignore_ctrl_c();
    let status = child.wait();
    if let Some(cluster) = cluster {
        step("Stopping PostgreSQL");
        cluster.stop();
    }
    match status {
        Ok(s) if s.success() || s.code().is_none() => Ok(()),
        Ok(s) => Err(format!("the server exited with {s}")),
        Err(e) => Err(e.to_string()),
    }
}

/// Stops what a test run started, whichever way the run ends.
struct TestEnv {
    cluster: Option<Cluster>,
    server: Option<Child>,
    dir: PathBuf,
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if let Some(mut server) = self.server.take() {
            let _ = server.kill();
            let _ = server.wait();
        }
        if let Some(cluster) = self.cluster.take() {
            cluster.stop();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn ensure_browser_and_npm() -> Result {
    if !std::path::Path::new("/usr/bin/chromium").exists() {
        util::apt_install(&["chromium"])?;
    }
    let e2e = util::root().join("end2end");
    if !e2e.join("node_modules/@playwright/test").is_dir() {
        step("Installing the Playwright test runner (npm ci)");
        run(Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(&e2e).env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1"))?;
    }
    Ok(())
}

fn test() -> Result {
    let started = std::time::Instant::now();
    let build = setup()?;
    ensure_browser_and_npm()?;
    // The WASM crate stays out: in one workspace build its `hydrate` feature would be unified
    // into the server's copy of the app.
    // One build for the server binary and every test: building the server alone would resolve
    // different dependency features (no dev-dependencies) and compile much of it twice.
    step("Compiling the server and every test");
    run(build.cargo().args(["build", "--workspace", "--exclude", "tessera-frontend", "--tests"]))?;
    build.site(false)?;

    let dir = std::env::temp_dir().join(format!("tessera-test-{}", std::process::id()));
    let mut env = TestEnv { cluster: None, server: None, dir: dir.clone() };
    let port = util::free_port()?;
    step(&format!("Starting an ephemeral PostgreSQL on port {port}"));
    let cluster = Cluster::start(&dir.join("pg"), port, true)?;
    cluster.psql("postgres", "CREATE DATABASE tessera_template OWNER tessera_owner")?;
    run(Command::new(Build::server_binary(false))
        .arg("migrate")
        .env("DATABASE_OWNER_URL", cluster.url("tessera_owner", "tessera_template")))?;
    let admin_url = cluster.url("tessera_owner", "postgres");
    env.cluster = Some(cluster);

    step("Running the Rust tests");
    let rust_ok = util::status(
        build
            .cargo()
            .args(["test", "--workspace", "--exclude", "tessera-frontend", "--no-fail-fast"])
            .env("TESSERA_TEST_ADMIN_URL", &admin_url)
            .env("TESSERA_TEST_TEMPLATE", "tessera_template"),
    )?
    .success();

    step("Running the Playwright suite in Chromium");
    let cluster = env.cluster.as_ref().expect("started above");
    cluster.psql("postgres", "CREATE DATABASE tessera_e2e TEMPLATE tessera_template OWNER tessera_owner")?;
    let http_port = util::free_port()?;
    let base_url = format!("http://127.0.0.1:{http_port}");
    let server = Command::new(Build::server_binary(false))
        .env("DATABASE_URL", cluster.url("tessera_app", "tessera_e2e"))
        .env("TESSERA_ADDR", format!("127.0.0.1:{http_port}"))
        .env("LEPTOS_SITE_ROOT", Build::site_root())
        .env("TESSERA_SEED_DEMO", "1")
        .env("RUST_LOG", "warn")
        .spawn()
        .map_err(|e| format!("could not start the server: {e}"))?;
    let server = env.server.insert(server);
    util::wait_for_http(&format!("{base_url}/healthz"), 60, server)?;
    let e2e_ok = util::status(
        Command::new("npx").args(["playwright", "test"]).current_dir(util::root().join("end2end")).env("BASE_URL", &base_url),
    )?
    .success();
    drop(env);

    let minutes = started.elapsed().as_secs_f64() / 60.0;
    match (rust_ok, e2e_ok) {
        (true, true) => {
            step(&format!("All tests passed in {minutes:.1} min"));
            Ok(())
        }
        _ => Err(format!(
            "tests failed (Rust tests: {}, Playwright: {}) after {minutes:.1} min",
            if rust_ok { "passed" } else { "FAILED" },
            if e2e_ok { "passed" } else { "FAILED" }
        )),
    }
}

fn bench() -> Result {
    let build = setup()?;
    build.server(true)?;
    let status = util::status(Command::new("bash").arg(util::root().join("bench/projects_page.sh")).env("TESSERA_SERVER_BIN", Build::server_binary(true)))?;
    if status.success() { Ok(()) } else { Err("benchmark failed".into()) }
}
