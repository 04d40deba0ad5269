//! A real PostgreSQL 15 server for reference runs: Debian's `postgresql`
//! package (`scripts/install-deps.sh` installs it), started on a free
//! loopback port in a temp dir, stopped (SIGKILL, by pid) when dropped.
//!
//! PostgreSQL refuses to run as root; as root, `initdb` and `postgres` run
//! as the package's `postgres` user, which owns the temp dir.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::free_ports;

/// Where Debian puts PostgreSQL 15's server programs.
const BIN_DIR: &str = "/usr/lib/postgresql/15/bin";

/// A running PostgreSQL server.
pub struct Postgres {
    dir: tempfile::TempDir,
    child: Child,
    port: u16,
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout == b"0\n")
}

/// `program`, run as the `postgres` user when this process is root.
/// `setpriv` execs the program in its own place (`runuser` stays as its
/// parent), so the child's pid is the server's and killing it on drop
/// stops the server rather than orphaning it.
fn as_server_user(program: &Path) -> Command {
    if is_root() {
        let mut command = Command::new("setpriv");
        command.args(["--reuid=postgres", "--regid=postgres", "--init-groups", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

impl Postgres {
    /// Initialises a cluster in a temp dir and starts it; the database
    /// `postgres` accepts the user `postgres` without a password over
    /// TCP on 127.0.0.1.
    pub fn start() -> Result<Postgres> {
        let bin = PathBuf::from(BIN_DIR);
        if !bin.join("postgres").exists() {
            bail!("{BIN_DIR}/postgres not found: scripts/install-deps.sh installs Debian's postgresql package");
        }
        let dir = tempfile::Builder::new().prefix("seshat-postgres-").tempdir()?;
        let data = dir.path().join("data");
        if is_root() {
            let status = Command::new("chown").args(["-R", "postgres:postgres"]).arg(dir.path()).status()?;
            if !status.success() {
                bail!("chown of {} to postgres failed", dir.path().display());
            }
        }
        let output = as_server_user(&bin.join("initdb"))
            .args(["-D"])
            .arg(&data)
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale", "C", "--no-sync"])
            .output()
            .context("initdb")?;
        if !output.status.success() {
            bail!("initdb failed: {}", String::from_utf8_lossy(&output.stderr));
        }
        let port = free_ports(1)?[0];
        let child = as_server_user(&bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-h", "127.0.0.1", "-k"])
            .arg(dir.path())
            .args(["-c", "fsync=off", "-c", "TimeZone=UTC"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("postgres")?;
        let server = Postgres { dir, child, port };
        server.wait_ready()?;
        Ok(server)
    }

    fn wait_ready(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                let ready = Command::new("pg_isready")
                    .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-q"])
                    .status()
                    .is_ok_and(|s| s.success());
                if ready {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("PostgreSQL did not start on port {} (data in {})", self.port, self.dir.path().display())
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A client of database `database`.
    pub async fn connect(&self, database: &str) -> Result<tokio_postgres::Client> {
        let config = format!("host=127.0.0.1 port={} user=postgres dbname={database}", self.port);
        let (client, connection) = tokio_postgres::connect(&config, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        Ok(client)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
