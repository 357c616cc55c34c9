//! A private PostgreSQL cluster (initdb + pg_ctl), for `dev` (kept in a data folder) and for
//! `test` (ephemeral, on a free port). Roles match production: `tessera_owner` runs migrations,
//! `tessera_app` serves requests and can't bypass row-level security.

use crate::util::{self, run, step, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Cluster {
    pub data: PathBuf,
    pub port: u16,
    bin: PathBuf,
    /// initdb refuses to run as root; then every server command runs as this user.
    run_as: Option<String>,
}

impl Cluster {
    fn command(&self, program: &str) -> Command {
        let exe = self.bin.join(program);
        match &self.run_as {
            Some(user) => {
                let mut cmd = Command::new("runuser");
                cmd.args(["-u", user, "--"]).arg(exe);
                cmd
            }
            None => Command::new(exe),
        }
    }

    /// Starts the cluster in `data`, creating it first if needed.
    pub fn start(data: &Path, port: u16, for_tests: bool) -> Result<Cluster> {
        let bin = find_bin_dir()?;
        let run_as = util::is_root().then(|| "postgres".to_string());
        let cluster = Cluster { data: data.to_path_buf(), port, bin, run_as };
        let fresh = !data.join("PG_VERSION").exists();
        if fresh {
            std::fs::create_dir_all(data).map_err(|e| format!("cannot create {}: {e}", data.display()))?;
            if let Some(user) = &cluster.run_as {
                run(Command::new("chown").args(["-R", user]).arg(data))?;
            }
            let mut initdb = cluster.command("initdb");
            initdb.arg("-D").arg(data).args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"]);
            run(initdb.stdout(std::process::Stdio::null()))?;
        }
        // Tests trade durability for speed; the dev cluster keeps the defaults.
        let mut opts = format!("-p {port} -c listen_addresses=127.0.0.1 -k {}", data.display());
        if for_tests {
            opts.push_str(" -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300");
            // TLS, with a certificate from a throwaway CA, so tests can connect with
            // `sslmode=verify-full` as an app reaching a region on another host would.
            let (cert, key) = cluster.tls_files()?;
            opts.push_str(&format!(" -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}", cert.display(), key.display()));
        }
        let mut start = cluster.command("pg_ctl");
        start.arg("-D").arg(data).args(["-o", &opts, "-l"]).arg(data.join("server.log")).args(["-w", "-t", "60", "start"]);
        run(start.stdout(std::process::Stdio::null())).map_err(|e| format!("{e}; see {}", data.join("server.log").display()))?;
        if fresh {
            cluster
                .psql("postgres", "CREATE ROLE tessera_owner LOGIN CREATEDB CREATEROLE; CREATE ROLE tessera_app LOGIN NOSUPERUSER NOBYPASSRLS;")?;
            cluster.psql("postgres", "CREATE DATABASE tessera OWNER tessera_owner;")?;
        }
        // No temporary tables for the app role (they would be searched before public); done
        // every start so clusters made before the rule get it too.
        cluster.psql("postgres", "REVOKE TEMPORARY ON DATABASE tessera FROM PUBLIC;")?;
        // Dropping a dedicated tenant database (purge, move) ends the app's open connections to
        // it first, which takes this built-in role. Granted every start so older clusters get it.
        cluster.psql("postgres", "GRANT pg_signal_backend TO tessera_owner;")?;
        // The app role sets what row-level security reads only with `SET LOCAL`, which can't
        // hide inside another statement; taking `set_config()` away means SQL slipped into a
        // query can't switch tenants (see `db::set_local`). Function rights live in each
        // database; template1 passes them to every database made later (dedicated tenants).
        for database in cluster.databases()? {
            cluster.psql(
                &database,
                "REVOKE EXECUTE ON FUNCTION pg_catalog.set_config(text, text, boolean) FROM PUBLIC;
                 GRANT EXECUTE ON FUNCTION pg_catalog.set_config(text, text, boolean) TO tessera_owner;",
            )?;
        }
        Ok(cluster)
    }

    /// The CA certificate test clients trust for this cluster's TLS (see [`Cluster::start`]).
    pub fn tls_ca(&self) -> std::path::PathBuf {
        self.data.join("tls-ca.crt")
    }

    /// Makes a CA and a certificate it signs for 127.0.0.1 (once per cluster).
    fn tls_files(&self) -> Result<(std::path::PathBuf, std::path::PathBuf)> {
        let (ca_key, ca, key, csr, cert) =
            (self.data.join("tls-ca.key"), self.tls_ca(), self.data.join("tls.key"), self.data.join("tls.csr"), self.data.join("tls.crt"));
        if !cert.exists() {
            if util::which("openssl").is_none() {
                util::apt_install(&["openssl"])?;
            }
            let openssl = |args: &[&str]| run(Command::new("openssl").args(args).stdout(std::process::Stdio::null()));
            let path = |p: &Path| p.display().to_string();
            openssl(&[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "30",
                "-subj",
                "/CN=tessera test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
                "-keyout",
                &path(&ca_key),
                "-out",
                &path(&ca),
            ])?;
            openssl(&["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", &path(&key), "-out", &path(&csr)])?;
            let ext = self.data.join("tls.ext");
            std::fs::write(
                &ext,
                "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
            )
            .map_err(|e| e.to_string())?;
            openssl(&[
                "x509",
                "-req",
                "-in",
                &path(&csr),
                "-CA",
                &path(&ca),
                "-CAkey",
                &path(&ca_key),
                "-CAcreateserial",
                "-days",
                "30",
                "-extfile",
                &path(&ext),
                "-out",
                &path(&cert),
            ])?;
            if let Some(user) = &self.run_as {
                run(Command::new("chown").arg(user).arg(&key).arg(&cert))?;
            }
            // PostgreSQL refuses a key others can read.
            run(Command::new("chmod").arg("600").arg(&key))?;
        }
        Ok((cert, key))
    }

    pub fn stop(&self) {
        let mut stop = self.command("pg_ctl");
        stop.arg("-D").arg(&self.data).args(["-m", "fast", "-w", "stop"]);
        let _ = stop.stdout(std::process::Stdio::null()).status();
    }

    pub fn url(&self, user: &str, database: &str) -> String {
        format!("postgres://{user}@127.0.0.1:{}/{database}", self.port)
    }

    /// Ends every client connection but this one. The Rust tests leave idle connections to
    /// hundreds of databases behind (PgBouncer keeps its server connections a while), and the
    /// browser suite's server that starts next needs the slots.
    pub fn end_client_connections(&self) -> Result {
        self.psql(
            "postgres",
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
        )
    }

    /// Every database that takes connections (template1 included).
    pub fn databases(&self) -> Result<Vec<String>> {
        let out = Command::new(self.bin.join("psql"))
            .args(["-At", "-h", "127.0.0.1", "-U", "postgres", "-p", &self.port.to_string(), "-d", "postgres", "-c"])
            .arg("SELECT datname FROM pg_database WHERE datallowconn")
            .output()
            .map_err(|e| format!("psql: {e}"))?;
        if !out.status.success() {
            return Err(format!("listing databases failed: {}", String::from_utf8_lossy(&out.stderr)));
        }
        Ok(String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect())
    }

    pub fn psql(&self, database: &str, sql: &str) -> Result {
        run(Command::new(self.bin.join("psql"))
            .args(["-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-U", "postgres", "-p", &self.port.to_string(), "-d", database, "-c", sql])
            .stdout(std::process::Stdio::null()))
    }
}

fn find_bin_dir() -> Result<PathBuf> {
    let find = || -> Option<PathBuf> {
        let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|bin| bin.join("initdb").is_file() && bin.join("psql").is_file())
            .collect();
        versions.sort();
        versions.pop().or_else(|| util::which("initdb").and_then(|p| p.parent().map(Path::to_path_buf)))
    };
    if let Some(bin) = find() {
        return Ok(bin);
    }
    step("PostgreSQL is not installed; installing Debian's postgresql package");
    util::apt_install(&["postgresql"])?;
    find().ok_or_else(|| "PostgreSQL was installed but initdb was not found under /usr/lib/postgresql".into())
}
