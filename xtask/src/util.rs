//! Small process helpers: run a command, fail loudly with what was being attempted.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

pub type Result<T = ()> = std::result::Result<T, String>;

pub fn step(message: &str) {
    eprintln!("\x1b[1;34m==>\x1b[0m {message}");
}

pub fn run(cmd: &mut Command) -> Result {
    let status = status(cmd)?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{}` failed ({status})", describe(cmd)))
    }
}

pub fn status(cmd: &mut Command) -> Result<ExitStatus> {
    cmd.status().map_err(|e| format!("could not start `{}`: {e}", describe(cmd)))
}

pub fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd.stderr(Stdio::inherit()).output().map_err(|e| format!("could not start `{}`: {e}", describe(cmd)))?;
    if !out.status.success() {
        return Err(format!("`{}` failed ({})", describe(cmd), out.status));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

pub fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().to_string();
    for arg in cmd.get_args() {
        s.push(' ');
        s.push_str(&arg.to_string_lossy());
    }
    s
}

pub fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|dir| Path::new(dir).join(program)).find(|p| p.is_file())
}

/// The workspace root (xtask lives one level below it).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask has a parent").to_path_buf()
}

/// Cache for tools and toolchains, outside the clone so a fresh clone reuses it.
pub fn cache_dir() -> PathBuf {
    let dir = std::env::var_os("TESSERA_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/tessera")))
        .unwrap_or_else(|| std::env::temp_dir().join("tessera-cache"));
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// A venv in the cache (`name`) with `packages` (pinned, from PyPI) installed; made once.
pub fn python_venv(name: &str, packages: &[&str]) -> Result<PathBuf> {
    let venv = cache_dir().join(name);
    let marker = venv.join(packages.join("+"));
    if !marker.exists() {
        step(&format!("Installing {} from PyPI (once; cached)", packages.join(" and ")));
        if which("python3").is_none() {
            apt_install(&["python3", "python3-venv"])?;
        }
        if run(Command::new("python3").args(["-m", "venv"]).arg(&venv)).is_err() {
            apt_install(&["python3-venv"])?;
            run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
        }
        run(Command::new(venv.join("bin/pip")).args(["install", "--quiet", "--disable-pip-version-check"]).args(packages))?;
        std::fs::write(&marker, "").map_err(|e| e.to_string())?;
    }
    Ok(venv)
}

pub fn is_root() -> bool {
    output(Command::new("id").arg("-u")).is_ok_and(|uid| uid == "0")
}

/// Installs Debian packages (as root directly, otherwise through sudo).
pub fn apt_install(packages: &[&str]) -> Result {
    step(&format!("Installing Debian packages: {}", packages.join(" ")));
    let apt = |args: &[&str]| {
        let mut cmd = if is_root() {
            Command::new("apt-get")
        } else {
            let mut c = Command::new("sudo");
            c.arg("apt-get");
            c
        };
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        cmd
    };
    let mut install = apt(&["install", "-y", "-q", "--no-install-recommends"]);
    install.args(packages);
    if status(&mut install)?.success() {
        return Ok(());
    }
    run(&mut apt(&["update", "-q"]))?;
    let mut install = apt(&["install", "-y", "-q", "--no-install-recommends"]);
    install.args(packages);
    run(&mut install)
}

/// A free TCP port on loopback.
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// Waits until `url` answers 200, or fails early if `process` exits first.
pub fn wait_for_http(url: &str, seconds: u64, process: &mut std::process::Child) -> Result {
    let addr = url.trim_start_matches("http://").split('/').next().unwrap_or_default().to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while std::time::Instant::now() < deadline {
        if let Ok(Some(status)) = process.try_wait() {
            return Err(format!("the server exited ({status}) before answering {url}"));
        }
        if let Ok(mut stream) = std::net::TcpStream::connect(&addr) {
            use std::io::{Read, Write};
            let path = url.splitn(4, '/').nth(3).unwrap_or_default();
            let _ = write!(stream, "GET /{path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
            let mut buf = String::new();
            let _ = stream.read_to_string(&mut buf);
            if buf.starts_with("HTTP/1.1 200") || buf.starts_with("HTTP/1.0 200") {
                return Ok(());
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    Err(format!("{url} did not answer within {seconds}s"))
}

/// Waits until something listens on `port` on loopback.
pub fn wait_for_port(port: u16, seconds: u64) -> Result {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while std::time::Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Err(format!("nothing listened on port {port} within {seconds} s"))
}

/// Hard-to-guess text for a development secret (xtask has no dependencies, so no `rand`): the
/// clock's nanoseconds mixed with the process id.
pub fn nonce() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let mixed = nanos.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ u128::from(std::process::id()).rotate_left(64);
    format!("{mixed:032x}")
}

/// Registers a webhook endpoint at `url` in the Stripe stand-in's account `key` (on `port`),
/// returning its signing secret (a plain HTTP/1.0 request: xtask has no HTTP client).
pub fn stripe_webhook_endpoint(port: u16, key: &str, url: &str) -> Result<String> {
    use std::io::{Read, Write};
    let body = format!("url={}&enabled_events[]=*", url.replace(':', "%3A").replace('/', "%2F"));
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("the Stripe stand-in: {e}"))?;
    write!(
        stream,
        "POST /v1/webhook_endpoints HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {key}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| format!("the Stripe stand-in: {e}"))?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).map_err(|e| format!("the Stripe stand-in: {e}"))?;
    let secret = answer.split("\"secret\":\"").nth(1).and_then(|rest| rest.split('"').next());
    secret.map(str::to_string).ok_or_else(|| format!("the Stripe stand-in didn't make a webhook endpoint: {answer}"))
}
