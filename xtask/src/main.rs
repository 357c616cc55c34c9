//! `cargo xtask dev` runs Tessera locally; `cargo xtask test` runs every test. Both install
//! what is missing first, so a fresh machine needs nothing but these commands.

mod pgbouncer;
mod postgres;
mod scans;
mod security;
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
  test        install what is missing, run the dependency scans, fmt and clippy, then every Rust test
              and the Playwright suite, directly and through PgBouncer; `test <filter>…` runs only matching Rust tests, directly;
              `test --e2e [pattern]` runs only the Playwright journeys (matching pattern), directly
  scan        the offline dependency scans the full test run starts with: cargo-deny and cargo-audit
              against the RustSec snapshot in ../shared/data
  security    attack a local Tessera with the demo data: schemathesis against /api/v1/openapi.json with a
              real API key, sqlmap against the sign-in form, a REST route and a server function
  setup       only install the toolchain and tools the other commands need
  bench       build in release mode; load-test one page per tenancy model, a REST and a server-function call against
              a bare axum + sqlx baseline; bundle size and time to interactive; RLS overhead; migrating 1,000 tenant schemas
";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("dev") => dev(),
        Some("test") => test(&args[1..]),
        Some("setup") => setup().map(|_| ()),
        Some("scan") => setup().and_then(|build| scan(&build)),
        Some("security") => setup().and_then(|build| security::run_scans(&build)),
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
    ensure_native_libraries()?;
    let toolchain = toolchain::ensure_wasm_toolchain()?;
    let wasm_bindgen = toolchain::ensure_wasm_bindgen()?;
    Ok(Build { toolchain, wasm_bindgen })
}

/// SAML signature checking (samael) links libxmlsec1 and libxml2 and generates its bindings
/// with libclang; these Debian packages provide them.
fn ensure_native_libraries() -> Result {
    const PACKAGES: [&str; 6] = ["libxmlsec1-dev", "libxml2-dev", "libxslt1-dev", "libssl-dev", "pkg-config", "libclang-dev"];
    let installed = |package: &str| {
        Command::new("dpkg-query")
            .args(["-W", "-f=${Status}", package])
            .stderr(std::process::Stdio::null())
            .output()
            .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains("install ok installed"))
    };
    let missing: Vec<&str> = PACKAGES.into_iter().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        Ok(())
    } else {
        util::apt_install(&missing)
    }
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

/// The two regions `dev` and `test` run, each on its own PostgreSQL cluster.
const REGION_A: &str = "eu";
const REGION_B: &str = "us";

/// Environment for a server (or `migrate`) whose control plane and region A share database
/// `db_a` on cluster `a`, with region B's database `db_b` on cluster `b`. `app_a`/`app_b`
/// are where the app role connects (the clusters themselves, or PgBouncers in front of them).
fn region_env(a: &Cluster, db_a: &str, b: &Cluster, db_b: &str, app_a: u16, app_b: u16) -> Vec<(String, String)> {
    let app = |port: u16, db: &str| format!("postgres://tessera_app@127.0.0.1:{port}/{db}");
    vec![
        ("DATABASE_URL".into(), app(app_a, db_a)),
        ("TESSERA_REGIONS".into(), format!("{REGION_A}={},{REGION_B}={}", app(app_a, db_a), app(app_b, db_b))),
        ("TESSERA_REGION_OWNER_URLS".into(), format!("{REGION_A}={},{REGION_B}={}", a.url("tessera_owner", db_a), b.url("tessera_owner", db_b))),
    ]
}

fn dev() -> Result {
    let build = setup()?;
    build.server(false)?;
    build.site(false)?;
    let mut server = Command::new(Build::server_binary(false));
    server.env("LEPTOS_SITE_ROOT", Build::site_root());
    // Development: webhooks may go to a receiver on this machine (never set in production).
    if std::env::var_os("TESSERA_WEBHOOK_PRIVATE_HOSTS").is_none() {
        server.env("TESSERA_WEBHOOK_PRIVATE_HOSTS", "1");
    }
    let clusters = if std::env::var("DATABASE_URL").is_ok_and(|v| !v.is_empty()) {
        None
    } else {
        let port = std::env::var("TESSERA_PG_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(54329);
        let data = util::root().join(".tessera");
        step(&format!("Starting PostgreSQL for region {REGION_A} in {} on port {port}", data.join("pgdata").display()));
        let a = Cluster::start(&data.join("pgdata"), port, false)?;
        step(&format!("Starting PostgreSQL for region {REGION_B} in {} on port {}", data.join("pgdata-us").display(), port + 1));
        let b = match Cluster::start(&data.join("pgdata-us"), port + 1, false) {
            Ok(b) => b,
            Err(e) => {
                a.stop();
                return Err(e);
            }
        };
        for (k, v) in region_env(&a, "tessera", &b, "tessera", a.port, b.port) {
            server.env(k, v);
        }
        server.env("DATABASE_OWNER_URL", a.url("tessera_owner", "tessera")).env("TESSERA_SEED_DEMO", "1").env("TESSERA_DATA_DIR", data.join("data"));
        Some((a, b))
    };
    // Billing against the Stripe stand-in, unless a real Stripe key is given.
    let stripe = if std::env::var_os("TESSERA_STRIPE_SECRET_KEY").is_none() {
        let port = util::free_port()?;
        let (key, secret) = (format!("sk_test_dev{}", std::process::id()), format!("whsec_dev{}", util::nonce()));
        step(&format!("Starting the Stripe stand-in on http://127.0.0.1:{port} (its checkout pages take the test card 4242 4242 4242 4242)"));
        let child = stand_in(
            "stripe.mjs",
            &[
                ("STRIPE_PORT", port.to_string()),
                ("STRIPE_DEV_KEY", key.clone()),
                ("STRIPE_DEV_WEBHOOK_URL", "http://127.0.0.1:3000/webhooks/stripe".into()),
                ("STRIPE_DEV_WEBHOOK_SECRET", secret.clone()),
            ],
        )?;
        util::wait_for_port(port, 30)?;
        server
            .env("TESSERA_STRIPE_SECRET_KEY", &key)
            .env("TESSERA_STRIPE_API_BASE", format!("http://127.0.0.1:{port}"))
            .env("TESSERA_STRIPE_WEBHOOK_SECRET", &secret);
        Some(child)
    } else {
        None
    };
    // The plans in Stripe as `billing/plans.toml` has them (idempotent).
    if stripe.is_some() {
        let mut sync = Command::new(Build::server_binary(false));
        sync.args(["billing", "sync"]).envs(server.get_envs().filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))));
        run(&mut sync)?;
    }
    step("Serving Tessera at http://127.0.0.1:3000 (Ctrl-C stops it; demo login: owner@acme.test / tessera-demo)");
    let mut child = server.spawn().map_err(|e| format!("could not start the server: {e}"))?;
    ignore_ctrl_c();
    let status = child.wait();
    if let Some(mut stripe) = stripe {
        let _ = stripe.kill();
    }
    if let Some((a, b)) = clusters {
        step("Stopping PostgreSQL");
        a.stop();
        b.stop();
    }
    match status {
        Ok(s) if s.success() || s.code().is_none() => Ok(()),
        Ok(s) => Err(format!("the server exited with {s}")),
        Err(e) => Err(e.to_string()),
    }
}

/// Stops what a test run started, whichever way the run ends.
struct TestEnv {
    clusters: Vec<Cluster>,
    /// Stand-ins for outside services (the SMTP catcher).
    helpers: Vec<Child>,
    bouncers: Vec<pgbouncer::PgBouncer>,
    server: Option<Child>,
    dir: PathBuf,
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if let Some(mut server) = self.server.take() {
            let _ = server.kill();
            let _ = server.wait();
        }
        self.bouncers.clear();
        for mut helper in self.helpers.drain(..) {
            let _ = helper.kill();
            let _ = helper.wait();
        }
        for cluster in self.clusters.drain(..) {
            cluster.stop();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts one of `end2end/stand-ins/` under node; its output stays out of the test log, and
/// so does stderr for the chatty ones (`oidc-provider` and `saml-idp` warn about dev keys).
fn stand_in(script: &str, envs: &[(&str, String)]) -> std::result::Result<std::process::Child, String> {
    let chatty = matches!(script, "oidc-provider.mjs" | "saml-idp.mjs");
    Command::new("node")
        .arg(util::root().join("end2end/stand-ins").join(script))
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(std::process::Stdio::null())
        .stderr(if chatty { std::process::Stdio::null() } else { std::process::Stdio::inherit() })
        .spawn()
        .map_err(|e| format!("could not start the stand-in {script}: {e}"))
}

/// Debian's redis-server on loopback, nothing persisted (installed on first use).
fn start_redis(dir: &std::path::Path, port: u16) -> std::result::Result<Child, String> {
    if util::which("redis-server").is_none() {
        util::apt_install(&["redis-server"])?;
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", "", "--appendonly", "no", "--dir"])
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("could not start redis-server: {e}"))
}

fn ensure_browser_and_npm() -> Result {
    if !std::path::Path::new("/usr/bin/chromium").exists() {
        util::apt_install(&["chromium"])?;
    }
    // The billing journey reads the text of an invoice PDF, as a person's viewer would.
    if util::which("pdftotext").is_none() {
        util::apt_install(&["poppler-utils"])?;
    }
    let e2e = util::root().join("end2end");
    // npm records what it installed in node_modules/.package-lock.json; a lockfile newer than
    // that (a dependency was added since) means installing again.
    let modified = |p: &str| std::fs::metadata(e2e.join(p)).and_then(|m| m.modified()).ok();
    let stale = match (modified("package-lock.json"), modified("node_modules/.package-lock.json")) {
        (Some(lock), Some(installed)) => lock > installed,
        _ => true,
    };
    if stale {
        step("Installing the Playwright test runner and the test stand-ins (npm ci)");
        run(Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(&e2e).env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1"))?;
    }
    Ok(())
}

/// cargo-deny and cargo-audit, offline; both read the crates' manifests, so they are fetched first.
fn scan(build: &Build) -> Result {
    step("Fetching crates for the offline dependency scans");
    run(build.cargo().arg("fetch"))?;
    scans::run_all()
}

/// Standard Webhooks' own Python library, pinned: tests check our signatures with it.
const STANDARD_WEBHOOKS: &str = "standardwebhooks==1.3.0";

fn test(args: &[String]) -> Result {
    let e2e_only = args.first().is_some_and(|a| a == "--e2e");
    let (filter, e2e_grep): (&[String], Option<&String>) = if e2e_only { (&[], args.get(1)) } else { (args, None) };
    let started = std::time::Instant::now();
    let build = setup()?;
    ensure_browser_and_npm()?;
    // The WASM crate stays out: in one workspace build its `hydrate` feature would be unified
    // into the server's copy of the app.
    // One build for the server binary and every test: building the server alone would resolve
    // different dependency features (no dev-dependencies) and compile much of it twice.
    let mut results = Vec::new();
    // The full run starts with the dependency scans (seconds); a failure is reported with the
    // rest rather than stopping the tests.
    if filter.is_empty() && !e2e_only {
        let checks: [(&str, &dyn Fn() -> Result); 3] = [
            ("Dependency scans", &|| scan(&build)),
            ("Formatting (cargo fmt --check)", &|| {
                step("Checking the formatting (cargo fmt --check; `cargo fmt --all` fixes it)");
                run(Command::new("cargo").args(["fmt", "--all", "--", "--check"]).current_dir(util::root()).env_remove("RUSTUP_TOOLCHAIN"))
            }),
            ("Lints (cargo clippy -D warnings)", &|| {
                step("Linting (cargo clippy, warnings are errors)");
                // The default toolchain's clippy: the wasm fallback toolchain (Debian's rustc-web)
                // has none, and linting needs no wasm target.
                run(Command::new("cargo")
                    .args(["clippy", "--workspace", "--exclude", "tessera-frontend", "--tests", "--", "-D", "warnings"])
                    .current_dir(util::root())
                    .env_remove("RUSTUP_TOOLCHAIN")
                    .env_remove("RUSTC"))
            }),
        ];
        for (what, check) in checks {
            let outcome = check();
            if let Err(e) = &outcome {
                eprintln!("\x1b[1;31merror:\x1b[0m {e}");
            }
            results.push((what.to_string(), outcome.is_ok()));
        }
    }
    // The independent Standard Webhooks implementation the webhook tests verify signatures with.
    let webhook_verifier = util::python_venv("webhooks-venv", &[STANDARD_WEBHOOKS])?.join("bin/python");
    step("Compiling the server and every test");
    run(build.cargo().args(["build", "--workspace", "--exclude", "tessera-frontend", "--tests"]))?;
    build.site(false)?;

    let dir = std::env::temp_dir().join(format!("tessera-test-{}", std::process::id()));
    let mut env = TestEnv { clusters: Vec::new(), helpers: Vec::new(), bouncers: Vec::new(), server: None, dir: dir.clone() };
    for (i, region) in [REGION_A, REGION_B].iter().enumerate() {
        let port = util::free_port()?;
        step(&format!("Starting an ephemeral PostgreSQL for region {region} on port {port}"));
        env.clusters.push(Cluster::start(&dir.join(format!("pg{i}")), port, true)?);
    }
    let (a, b) = (&env.clusters[0], &env.clusters[1]);
    // Templates every test database is cloned from: the control plane plus region A's shared
    // schema on cluster A, region B's shared schema on cluster B.
    a.psql("postgres", "CREATE DATABASE tessera_template OWNER tessera_owner")?;
    b.psql("postgres", "CREATE DATABASE tessera_region_template OWNER tessera_owner")?;
    run(Command::new(Build::server_binary(false))
        .arg("migrate")
        .envs(region_env(a, "tessera_template", b, "tessera_region_template", a.port, b.port))
        .env("DATABASE_OWNER_URL", a.url("tessera_owner", "tessera_template"))
        .stdout(std::process::Stdio::null()))?;

    // The SMTP catcher every test server sends to; tests read its HTTP API.
    let (smtp_port, maildev_port) = (util::free_port()?, util::free_port()?);
    step(&format!("Starting maildev (SMTP {smtp_port}, HTTP {maildev_port})"));
    let maildev = Command::new(util::root().join("end2end/node_modules/.bin/maildev"))
        .args(["--smtp", &smtp_port.to_string(), "--web", &maildev_port.to_string(), "--ip", "127.0.0.1", "--web-ip", "127.0.0.1"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("could not start maildev: {e}"))?;
    let maildev_url = format!("http://127.0.0.1:{maildev_port}");
    let smtp_url = format!("smtp://127.0.0.1:{smtp_port}");
    env.helpers.push(maildev);
    util::wait_for_port(maildev_port, 30)?;

    // The OpenID provider stand-in. Integration tests register their own clients with it; the
    // Playwright server (one port per pass, chosen now) uses a static client.
    let passes: &[&str] = if filter.is_empty() && !e2e_only { &["direct", "pgbouncer"] } else { &["direct"] };
    let e2e_ports = passes.iter().map(|_| util::free_port()).collect::<std::result::Result<Vec<_>, _>>()?;
    let oidc_port = util::free_port()?;
    let oidc_issuer = format!("http://127.0.0.1:{oidc_port}");
    let e2e_client_secret = "e2e-client-secret-not-for-production";
    // The Playwright server's static client, with one redirect URI per pass.
    let e2e_client = |provider: &str| {
        let uris: Vec<String> = e2e_ports.iter().map(|p| format!("\"http://127.0.0.1:{p}/auth/oidc/{provider}/callback\"")).collect();
        format!(r#"[{{"client_id":"tessera-e2e","client_secret":"{e2e_client_secret}","redirect_uris":[{}]}}]"#, uris.join(","))
    };
    step(&format!("Starting the OpenID Connect provider stand-in ({oidc_issuer})"));
    env.helpers.push(stand_in("oidc-provider.mjs", &[("OIDC_PORT", oidc_port.to_string()), ("OIDC_CLIENTS", e2e_client("testidp"))])?);
    util::wait_for_port(oidc_port, 30)?;

    // GitHub (plain OAuth 2 plus its REST API), laid out like an Enterprise Server.
    let github_port = util::free_port()?;
    let github_url = format!("http://127.0.0.1:{github_port}");
    step(&format!("Starting the GitHub OAuth stand-in ({github_url})"));
    env.helpers.push(stand_in("github-oauth.mjs", &[("GITHUB_PORT", github_port.to_string()), ("GITHUB_CLIENTS", e2e_client("github"))])?);
    util::wait_for_port(github_port, 30)?;

    // Stripe: the project's own stateful stand-in (end2end/stand-ins/stripe.mjs), its objects
    // checked against Stripe's example objects (the fixtures beside the advisory database).
    let stripe_port = util::free_port()?;
    let stripe_url = format!("http://127.0.0.1:{stripe_port}");
    step(&format!("Starting the Stripe stand-in ({stripe_url})"));
    env.helpers.push(stand_in("stripe.mjs", &[("STRIPE_PORT", stripe_port.to_string())])?);
    util::wait_for_port(stripe_port, 30)?;
    let stripe_fixtures = util::root().join("../shared/data/stripe-openapi/fixtures3.json");

    // A DNS server whose TXT records tests set over HTTP (domain verification), and a SAML IdP
    // (saml-idp) for organizations' single sign-on.
    let (dns_port, dns_http_port, saml_port) = (util::free_port()?, util::free_port()?, util::free_port()?);
    step(&format!("Starting the DNS stand-in (udp {dns_port}) and the SAML IdP stand-in (http {saml_port})"));
    env.helpers.push(stand_in("dns-server.mjs", &[("DNS_PORT", dns_port.to_string()), ("DNS_HTTP_PORT", dns_http_port.to_string())])?);
    env.helpers.push(stand_in("saml-idp.mjs", &[("SAML_IDP_PORT", saml_port.to_string())])?);
    util::wait_for_port(dns_http_port, 30)?;
    util::wait_for_port(saml_port, 30)?;
    // Redis, for the tests of request budgets shared by several servers.
    let redis_port = util::free_port()?;
    step(&format!("Starting Redis (port {redis_port})"));
    env.helpers.push(start_redis(&dir.join("redis"), redis_port)?);
    util::wait_for_port(redis_port, 30)?;
    let redis_url = format!("redis://127.0.0.1:{redis_port}");
    let dns_server = format!("127.0.0.1:{dns_port}");
    let dns_api = format!("http://127.0.0.1:{dns_http_port}");
    let saml_idp_url = format!("http://127.0.0.1:{saml_port}");

    for (&pass, &http_port) in passes.iter().zip(&e2e_ports) {
        let (a, b) = (&env.clusters[0], &env.clusters[1]);
        let (app_a, app_b, pgbouncer) = if pass == "pgbouncer" {
            step("Starting PgBouncer (transaction pooling) in front of both clusters");
            let ba = pgbouncer::PgBouncer::start(&dir.join("bouncer-a"), a.port)?;
            let bb = pgbouncer::PgBouncer::start(&dir.join("bouncer-b"), b.port)?;
            let ports = (ba.port, bb.port);
            env.bouncers.extend([ba, bb]);
            (ports.0, ports.1, "1")
        } else {
            (a.port, b.port, "0")
        };
        if !e2e_only {
            step(&format!("Running the Rust tests ({pass} connections)"));
            let rust_ok = util::status(
                build
                    .cargo()
                    .args(["test", "--workspace", "--exclude", "tessera-frontend", "--no-fail-fast", "--"])
                    .args(filter)
                    .env("TESSERA_TEST_ADMIN_URL", a.url("tessera_owner", "postgres"))
                    .env("TESSERA_TEST_REGION_B_ADMIN_URL", b.url("tessera_owner", "postgres"))
                    .env("TESSERA_TEST_TEMPLATE", "tessera_template")
                    .env("TESSERA_TEST_REGION_TEMPLATE", "tessera_region_template")
                    .env("TESSERA_TEST_APP_PORT_A", app_a.to_string())
                    .env("TESSERA_TEST_APP_PORT_B", app_b.to_string())
                    .env("TESSERA_PGBOUNCER", pgbouncer)
                    .env("TESSERA_TEST_SMTP_URL", &smtp_url)
                    .env("TESSERA_TEST_MAILDEV_URL", &maildev_url)
                    .env("TESSERA_TEST_OIDC_ISSUER", &oidc_issuer)
                    .env("TESSERA_TEST_GITHUB_URL", &github_url)
                    .env("TESSERA_TEST_DNS_SERVER", &dns_server)
                    .env("TESSERA_TEST_DNS_API", &dns_api)
                    .env("TESSERA_TEST_SAML_IDP_URL", &saml_idp_url)
                    .env("TESSERA_TEST_REDIS_URL", &redis_url)
                    .env("TESSERA_TEST_WEBHOOK_VERIFIER", &webhook_verifier)
                    .env("TESSERA_TEST_STRIPE_URL", &stripe_url)
                    .env("TESSERA_TEST_STRIPE_FIXTURES", &stripe_fixtures)
                    .env("TESSERA_TEST_PG_CA", a.tls_ca())
                    .env("TESSERA_TEST_REGION_B_PG_CA", b.tls_ca()),
            )?
            .success();
            results.push((format!("Rust tests, {pass}"), rust_ok));
            if !filter.is_empty() {
                break;
            }
        }

        step(&format!("Running the Playwright suite in Chromium ({pass} connections)"));
        for cluster in [a, b] {
            cluster.end_client_connections()?;
        }
        let db = format!("tessera_e2e_{pass}");
        // A clone gets the default database rights back: no temporary tables for the app role.
        for (cluster, template) in [(a, "tessera_template"), (b, "tessera_region_template")] {
            cluster.psql("postgres", &format!("CREATE DATABASE {db} TEMPLATE {template} OWNER tessera_owner"))?;
            cluster.psql("postgres", &format!("REVOKE TEMPORARY ON DATABASE {db} FROM PUBLIC"))?;
        }
        let base_url = format!("http://127.0.0.1:{http_port}");
        // Billing on, against an account of this pass's own in the Stripe stand-in, on test
        // clocks (journeys move a customer's time to make a renewal fail).
        let stripe_key = format!("sk_test_e2e_{pass}_{}", util::nonce());
        let stripe_secret = util::stripe_webhook_endpoint(stripe_port, &stripe_key, &format!("{base_url}/webhooks/stripe"))?;
        let stripe_env = [
            ("TESSERA_STRIPE_SECRET_KEY", stripe_key.clone()),
            ("TESSERA_STRIPE_API_BASE", stripe_url.clone()),
            ("TESSERA_STRIPE_WEBHOOK_SECRET", stripe_secret),
            ("TESSERA_STRIPE_TEST_CLOCKS", "1".into()),
        ];
        run(Command::new(Build::server_binary(false))
            .args(["billing", "sync"])
            .envs(region_env(a, &db, b, &db, app_a, app_b))
            .envs(stripe_env.clone()))?;
        let server = Command::new(Build::server_binary(false))
            .envs(region_env(a, &db, b, &db, app_a, app_b))
            .envs(stripe_env)
            .env("TESSERA_PGBOUNCER", pgbouncer)
            .env("TESSERA_SMTP_URL", &smtp_url)
            .env("TESSERA_PUBLIC_URL", &base_url)
            .env("TESSERA_ADDR", format!("127.0.0.1:{http_port}"))
            .env("LEPTOS_SITE_ROOT", Build::site_root())
            .env("TESSERA_SEED_DEMO", "1")
            .env("TESSERA_DNS_SERVER", &dns_server)
            // The SAML IdP stand-in's metadata URL is on loopback, and so is the webhook receiver.
            .env("TESSERA_SSO_PRIVATE_METADATA_HOSTS", "1")
            .env("TESSERA_WEBHOOK_PRIVATE_HOSTS", "1")
            .env(
                "TESSERA_OIDC_PROVIDERS",
                format!(
                    r#"[{{"id":"testidp","name":"Test IdP","issuer":"{oidc_issuer}","client_id":"tessera-e2e","client_secret":"{e2e_client_secret}"}},
                        {{"id":"github","name":"GitHub","kind":"github","server_url":"{github_url}","client_id":"tessera-e2e","client_secret":"{e2e_client_secret}"}}]"#
                ),
            )
            .env("RUST_LOG", "warn")
            .spawn()
            .map_err(|e| format!("could not start the server: {e}"))?;
        let server = env.server.insert(server);
        util::wait_for_http(&format!("{base_url}/healthz"), 60, server)?;
        let e2e_ok = util::status(
            Command::new("npx")
                .args(["playwright", "test"])
                .args(e2e_grep.map(|g| ["--grep".to_string(), g.clone()]).into_iter().flatten())
                .current_dir(util::root().join("end2end"))
                .env("BASE_URL", &base_url)
                .env("MAILDEV_URL", &maildev_url)
                .env("DNS_API_URL", &dns_api)
                .env("SAML_IDP_URL", &saml_idp_url)
                .env("STRIPE_URL", &stripe_url)
                .env("STRIPE_KEY", &stripe_key),
        )?
        .success();
        if let Some(mut server) = env.server.take() {
            let _ = server.kill();
            let _ = server.wait();
        }
        results.push((format!("Playwright, {pass}"), e2e_ok));
    }
    drop(env);

    let minutes = started.elapsed().as_secs_f64() / 60.0;
    let summary: Vec<String> = results.iter().map(|(what, ok)| format!("{what}: {}", if *ok { "passed" } else { "FAILED" })).collect();
    if results.iter().all(|(_, ok)| *ok) {
        step(&format!("All tests passed in {minutes:.1} min ({})", summary.join("; ")));
        Ok(())
    } else {
        Err(format!("tests failed after {minutes:.1} min ({})", summary.join("; ")))
    }
}

fn bench() -> Result {
    let build = setup()?;
    build.server(true)?;
    build.site(true)?;
    ensure_browser_and_npm()?;
    step("Building the baseline (bench/baseline: a bare axum + sqlx page)");
    run(build.cargo().args(["build", "--release", "-p", "tessera-bench-baseline"]))?;
    let baseline = Build::target_dir().join("release/tessera-bench-baseline");
    let status = util::status(
        Command::new("bash")
            .arg(util::root().join("bench/tenancy.sh"))
            .current_dir(util::root())
            .env("LEPTOS_SITE_ROOT", Build::site_root())
            .env("TESSERA_SERVER_BIN", Build::server_binary(true))
            .env("TESSERA_BASELINE_BIN", baseline),
    )?;
    if status.success() {
        Ok(())
    } else {
        Err("benchmark failed".into())
    }
}
