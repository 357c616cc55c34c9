//! PgBouncer in transaction pooling mode in front of a test cluster, so the whole suite can be
//! run a second time the way production often connects: no session state survives a
//! transaction, and server connections are shared between clients.

use crate::util::{self, run, Result};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub struct PgBouncer {
    pub port: u16,
    child: Child,
    dir: PathBuf,
}

fn binary() -> Result<PathBuf> {
    let find = || ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"].iter().map(PathBuf::from).find(|p| p.is_file()).or_else(|| util::which("pgbouncer"));
    if let Some(bin) = find() {
        return Ok(bin);
    }
    util::step("PgBouncer is not installed; installing Debian's pgbouncer package");
    util::apt_install(&["pgbouncer"])?;
    find().ok_or_else(|| "pgbouncer was installed but its binary was not found".into())
}

impl PgBouncer {
    /// Starts PgBouncer on a free port, forwarding every database name to `upstream_port`.
    pub fn start(dir: &Path, upstream_port: u16) -> Result<PgBouncer> {
        let bin = binary()?;
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let port = util::free_port()?;
        let users = dir.join("users.txt");
        std::fs::write(&users, "\"tessera_app\" \"\"\n\"tessera_owner\" \"\"\n\"postgres\" \"\"\n").map_err(|e| e.to_string())?;
        let ini = dir.join("pgbouncer.ini");
        // Idle server connections close after 10 s rather than PgBouncer's 10 min: every test
        // has its own databases, and a pool kept open for each would exhaust the cluster's
        // connection slots within one run.
        // DISCARD ALL after every transaction: sqlx names its prepared statements, and with the
        // statement cache off (TESSERA_PGBOUNCER) nothing reuses them, so they must not pile up
        // on (or collide in) a shared server connection.
        let config = format!(
            "[databases]\n* = host=127.0.0.1 port={upstream_port}\n\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
             auth_type = trust\nauth_file = {users}\npool_mode = transaction\nserver_reset_query = DISCARD ALL\nserver_reset_query_always = 1\n\
             ignore_startup_parameters = extra_float_digits,search_path\nmax_client_conn = 2000\nserver_login_retry = 1\ndefault_pool_size = 10\nmax_db_connections = 20\nserver_idle_timeout = 10\n\
             logfile = {log}\npidfile = {pid}\nadmin_users = postgres\n",
            users = users.display(),
            log = dir.join("pgbouncer.log").display(),
            pid = dir.join("pgbouncer.pid").display()
        );
        std::fs::write(&ini, config).map_err(|e| e.to_string())?;
        let mut cmd = if util::is_root() {
            run(Command::new("chown").args(["-R", "postgres"]).arg(dir))?;
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&bin);
            c
        } else {
            Command::new(&bin)
        };
        let child = cmd.arg(&ini).stdout(Stdio::null()).stderr(Stdio::null()).spawn().map_err(|e| format!("could not start pgbouncer: {e}"))?;
        let bouncer = PgBouncer { port, child, dir: dir.to_path_buf() };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(bouncer);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Err(format!("pgbouncer did not start listening on {port}; see {}", dir.join("pgbouncer.log").display()))
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        // runuser doesn't pass a kill on; stop PgBouncer itself by its pid file.
        if let Ok(pid) = std::fs::read_to_string(self.dir.join("pgbouncer.pid")) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
