//! `cargo xtask security`: attacks a running Tessera on loopback, from its own clusters with
//! the demo data. schemathesis generates requests from the OpenAPI document with a real API key
//! (every check: no server errors, answers as documented, bad input refused); sqlmap tries SQL
//! injection against the sign-in form, a REST route and a server function. Both are installed
//! from PyPI into a venv in the cache, pinned; each run is bounded in time.

use crate::postgres::Cluster;
use crate::site::Build;
use crate::util::{self, run, step, Result};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const SCHEMATHESIS: &str = "schemathesis==4.32.5";
const SQLMAP: &str = "sqlmap==1.10.10";

pub fn run_scans(build: &Build) -> Result {
    step("Compiling the server");
    run(build.cargo().args(["build", "--workspace", "--exclude", "tessera-frontend", "--tests"]))?;
    build.site(false)?;
    let venv = scanners()?;

    let dir = std::env::temp_dir().join(format!("tessera-security-{}", std::process::id()));
    let a = Cluster::start(&dir.join("pg0"), util::free_port()?, true)?;
    let result = Cluster::start(&dir.join("pg1"), util::free_port()?, true).and_then(|b| {
        let result = scan_against(&venv, &dir, &a, &b);
        b.stop();
        result
    });
    a.stop();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// A venv in the cache with the pinned scanners.
fn scanners() -> Result<std::path::PathBuf> {
    util::python_venv("security-venv", &[SCHEMATHESIS, SQLMAP])
}

fn scan_against(venv: &Path, dir: &Path, a: &Cluster, b: &Cluster) -> Result {
    let port = util::free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    let mut env = crate::region_env(a, "tessera", b, "tessera", a.port, b.port);
    env.push(("DATABASE_OWNER_URL".into(), a.url("tessera_owner", "tessera")));
    let mut server = Command::new(Build::server_binary(false))
        .envs(env)
        .env("TESSERA_ADDR", format!("127.0.0.1:{port}"))
        .env("TESSERA_PUBLIC_URL", &base)
        .env("TESSERA_SEED_DEMO", "1")
        .env("TESSERA_DATA_DIR", dir.join("data"))
        .env("LEPTOS_SITE_ROOT", Build::site_root())
        // sqlmap sends each request from a made-up address (its xforwardedfor tamper), so the
        // sign-in throttles, which would otherwise answer every payload alike, let it probe.
        .env("TESSERA_TRUSTED_PROXIES", "127.0.0.1/32")
        // No request budgets: thousands of generated requests a minute would mostly meet a 429
        // and leave the logic behind it untested (the budgets have tests of their own).
        .env("TESSERA_RATE_LIMIT_PER_ADDRESS", "0")
        .env("TESSERA_RATE_LIMIT_PER_USER", "0")
        .env("TESSERA_RATE_LIMIT_PER_ORGANIZATION", "0")
        .env("TESSERA_RATE_LIMIT_PER_API_KEY", "0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("could not start the server: {e}"))?;
    let outcome = (|| {
        util::wait_for_http(&format!("{base}/healthz"), 120, &mut server)?;
        step("Signing in as the demo Owner and making an API key for the scans");
        let out = Command::new("python3")
            .arg(util::root().join("xtask/security/sign_in.py"))
            .arg(&base)
            .output()
            .map_err(|e| format!("could not run sign_in.py: {e}"))?;
        if !out.status.success() {
            return Err(format!("signing in for the scans failed: {}", String::from_utf8_lossy(&out.stderr)));
        }
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let mut lines = text.lines();
        let (Some(key), Some(cookie), Some(project)) = (lines.next(), lines.next(), lines.next()) else {
            return Err(format!("sign_in.py printed no key, cookie and project: {text}"));
        };
        // The demo organization and one of its projects, so generated requests reach the
        // handlers rather than 404s; and what a valid request may rightly be refused with.
        let config = dir.join("schemathesis.toml");
        std::fs::write(
            &config,
            format!(
                r#"[parameters]
"path.slug" = "acme"
"path.id" = "{project}"

# Wrong credentials are a 422 naming the password field (and 403 where the address's
# organization requires its single sign-on).
[[operations]]
include-path = "/api/v1/auth/token"
checks.positive_data_acceptance.expected-statuses = [200, 403, 422, 429]

# The scan's credential is an API key, which acts for an organization, not a person.
[[operations]]
include-path = "/api/v1/me"
checks.positive_data_acceptance.expected-statuses = [200, 400, 429]
"#
            ),
        )
        .map_err(|e| e.to_string())?;

        step("schemathesis: every operation of /api/v1/openapi.json, all checks, 4 minutes at most");
        let schemathesis = util::status(
            Command::new(venv.join("bin/st"))
                // Its cache goes where it runs: here, not the repository.
                .current_dir(dir)
                .arg("--config-file")
                .arg(&config)
                .args(["run", &format!("{base}/api/v1/openapi.json"), "--checks", "all", "--max-time", "240", "--workers", "1"])
                .args(["--header", &format!("Authorization: Bearer {key}")])
                // From an address of its own: its thousands of sign-in attempts would otherwise
                // use up the sign-in throttle of 127.0.0.1, which sqlmap's first requests come from.
                .args(["--header", "X-Forwarded-For: 203.0.113.10"])
                .arg("--no-color"),
        )?
        .success();

        // Level 1, risk 1, every technique (time-based with 1 s delays), each target cut off
        // after 10 minutes. A sign-in changes IP each request (the xforwardedfor tamper, with
        // 127.0.0.1 a trusted proxy here) so the sign-in throttles don't answer every payload
        // alike; the password is probed with a fresh address each time for the same reason.
        let sqlmap = |what: &str, args: &[&str]| -> Result<bool> {
            step(&format!("sqlmap: {what}"));
            let out = Command::new("timeout")
                .arg("600")
                .arg(venv.join("bin/sqlmap"))
                // The --eval below is ours.
                .env("SQLMAP_UNSAFE_EVAL", "1")
                .current_dir(dir)
                .args(["--batch", "--level", "1", "--risk", "1", "--technique", "BEUST", "--time-sec", "1", "--tamper", "xforwardedfor"])
                .args(["--flush-session", "--disable-coloring", "--output-dir"])
                .arg(dir.join("sqlmap"))
                .args(args)
                .output()
                .map_err(|e| format!("could not run sqlmap: {e}"))?;
            let log = String::from_utf8_lossy(&out.stdout);
            let injectable = log.contains("identified the following injection point");
            // Clean only when sqlmap finished every parameter, and its requests reached the
            // handlers: a run cut off (timeout's 124), or one answered by 404s, 401s or 429s
            // throughout, proves nothing.
            let cut_off = out.status.code() == Some(124);
            let unreached =
                ["(401)", "(403)", "(404)", "(429)"].iter().any(|code| log.contains(&format!("responded with an HTTP error code {code}")));
            let finished = !cut_off && !unreached && (log.contains("all tested parameters do not appear to be injectable") || injectable);
            for line in log.lines().filter(|l| l.contains("[CRITICAL]") || l.contains("injectable") || l.contains("HTTP error code")) {
                println!("  {line}");
            }
            let verdict = match (injectable, finished) {
                (true, _) => "INJECTABLE",
                (false, true) => "not injectable",
                (false, false) => "INCONCLUSIVE (cut off or failed)",
            };
            println!("  -> {verdict}");
            Ok(finished && !injectable)
        };
        let form_email = sqlmap(
            "the sign-in form's email (POST /api/log_in)",
            &["-u", &format!("{base}/api/log_in"), "--data", "email=viewer%40acme.test&password=tessera-demo", "-p", "email"],
        )?;
        let form_password = sqlmap(
            "the sign-in form's password (POST /api/log_in)",
            &[
                "-u",
                &format!("{base}/api/log_in"),
                "--data",
                "email=scan%40example.test&password=guess",
                "-p",
                "password",
                "--eval",
                "import uuid; email='scan-%s@example.test' % uuid.uuid4().hex",
            ],
        )?;
        let bearer = format!("Authorization: Bearer {key}");
        let rest = sqlmap(
            "a REST route (GET /api/v1/orgs/<slug>/projects/<id>: both path segments)",
            &["-u", &format!("{base}/api/v1/orgs/acme*/projects/{project}*"), "--headers", &bearer],
        )?;
        let server_fn = sqlmap(
            "a server function (POST /api/list_projects: slug), signed in",
            &["-u", &format!("{base}/api/list_projects"), "--data", "slug=acme", "-p", "slug", "--cookie", cookie],
        )?;
        let results = [
            ("schemathesis", schemathesis),
            ("sqlmap: sign-in email", form_email),
            ("sqlmap: sign-in password", form_password),
            ("sqlmap: REST route", rest),
            ("sqlmap: server function", server_fn),
        ];
        let summary: Vec<String> = results.iter().map(|(what, ok)| format!("{what}: {}", if *ok { "clean" } else { "FINDINGS" })).collect();
        if results.iter().all(|(_, ok)| *ok) {
            step(&format!("Security scans clean ({})", summary.join("; ")));
            Ok(())
        } else {
            Err(format!("security scans found problems ({})", summary.join("; ")))
        }
    })();
    let _ = server.kill();
    let _ = server.wait();
    std::thread::sleep(Duration::from_millis(200));
    outcome
}
