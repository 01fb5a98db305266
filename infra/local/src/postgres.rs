//! A private, throwaway PostgreSQL server started from the local server
//! binaries (Debian package `postgresql`): `initdb` into a temporary
//! directory, `pg_ctl start` on a free loopback port, stopped and deleted on
//! drop.
//!
//! PostgreSQL refuses to run as root; when this process is root the server
//! runs as the `postgres` system user (created by the Debian package) with a
//! data directory it owns.

use std::net::TcpListener;
use std::os::unix::fs::chown;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Failures to start or stop the private server.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// No server binaries on this machine.
    #[error(
        "PostgreSQL server binaries (initdb, pg_ctl) were not found in /usr/lib/postgresql/*/bin or PG_BIN_DIR: \
         install them with `apt-get install -y postgresql`, or pass --database-url (env DATABASE_URL) to use an existing server"
    )]
    NotInstalled,
    /// Running as root without a `postgres` user to run the server as.
    #[error(
        "running as root, PostgreSQL must run as the `postgres` system user, which does not exist (it comes with `apt-get install -y postgresql`)"
    )]
    NoPostgresUser,
    /// A file-system step failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// `initdb` or `pg_ctl` failed.
    #[error("`{command}` failed: {output}")]
    Command {
        /// The command line.
        command: String,
        /// What it printed, and the server log where there is one.
        output: String,
    },
    /// The server started but the database could not be created.
    #[error("creating the database: {0}")]
    Sql(#[from] sqlx::Error),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> PgError {
    let what = what.into();
    move |source| PgError::Io { what, source }
}

/// Where the server binaries are: `PG_BIN_DIR`, else the newest
/// `/usr/lib/postgresql/<version>/bin`.
fn find_bin_dir() -> Result<PathBuf, PgError> {
    if let Some(dir) = std::env::var_os("PG_BIN_DIR") {
        let dir = PathBuf::from(dir);
        return if dir.join("initdb").exists() {
            Ok(dir)
        } else {
            Err(PgError::NotInstalled)
        };
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| PgError::NotInstalled)?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .ok_or(PgError::NotInstalled)
}

/// uid and gid of the `postgres` user, from /etc/passwd.
fn postgres_user() -> Result<(u32, u32), PgError> {
    let passwd = std::fs::read_to_string("/etc/passwd").map_err(io("reading /etc/passwd"))?;
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 3 && f[0] == "postgres")
        .and_then(|f| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
        .ok_or(PgError::NoPostgresUser)
}

fn is_root() -> bool {
    // The effective uid is readable without libc through /proc.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.to_string())
        })
        .and_then(|l| l.split_whitespace().nth(2).map(|uid| uid == "0"))
        .unwrap_or(false)
}

/// A free loopback TCP port (bound, then released).
pub fn free_port() -> Result<u16, PgError> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(io("finding a free port"))?;
    Ok(l.local_addr().map_err(io("finding a free port"))?.port())
}

/// Options of a private server.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Call fsync. Off by default: the instance is throwaway, and a process
    /// crash (as opposed to a machine crash) loses nothing without it.
    pub fsync: bool,
    /// Database to create and connect to.
    pub database: String,
    /// Serve TLS with this certificate and key (PEM files; copied into the
    /// instance's directory). Default: no TLS.
    pub tls: Option<PgTls>,
}

/// A server certificate and its key, both PEM.
#[derive(Debug, Clone)]
pub struct PgTls {
    /// Certificate chain.
    pub cert: PathBuf,
    /// Private key.
    pub key: PathBuf,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            fsync: false,
            database: "prescient".into(),
            tls: None,
        }
    }
}

/// A running private server. Stopped and its data deleted on drop.
#[derive(Debug)]
pub struct PgInstance {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    run_as: Option<(u32, u32)>,
    options: PgOptions,
    running: bool,
}

impl PgInstance {
    /// Starts a server with default [`PgOptions`].
    pub async fn start() -> Result<PgInstance, PgError> {
        Self::start_with(PgOptions::default()).await
    }

    /// `initdb`, start, and create the database.
    pub async fn start_with(options: PgOptions) -> Result<PgInstance, PgError> {
        let bin = find_bin_dir()?;
        let run_as = if is_root() {
            Some(postgres_user()?)
        } else {
            None
        };
        let dir = tempfile::Builder::new()
            .prefix("prescient-pg-")
            .tempdir()
            .map_err(io("creating a data directory"))?;
        if let Some((uid, gid)) = run_as {
            chown(dir.path(), Some(uid), Some(gid))
                .map_err(io("handing the data directory to `postgres`"))?;
        }
        let mut pg = PgInstance {
            bin,
            dir,
            port: free_port()?,
            run_as,
            options,
            running: false,
        };
        if let Some(tls) = &pg.options.tls {
            pg.install_tls(tls.clone())?;
        }
        let data = pg.data_dir();
        pg.run(
            "initdb",
            &[
                "-D",
                path_str(&data),
                "-U",
                "prescient",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--locale=C",
            ],
        )?;
        pg.start_server()?;
        let admin = format!("postgres://prescient@127.0.0.1:{}/postgres", pg.port);
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await?;
        let create = format!(
            "CREATE DATABASE \"{}\"",
            pg.options.database.replace('"', "")
        );
        sqlx::query(sqlx::AssertSqlSafe(create))
            .execute(&mut conn)
            .await?;
        tracing::info!(url = %pg.url(), data = %pg.dir.path().display(), "private PostgreSQL started");
        Ok(pg)
    }

    /// URL of the database, e.g. `postgres://prescient@127.0.0.1:PORT/prescient`.
    pub fn url(&self) -> String {
        format!(
            "postgres://prescient@127.0.0.1:{}/{}",
            self.port, self.options.database
        )
    }

    /// The TCP port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server (fast shutdown), keeping its data: [`PgInstance::restart`]
    /// brings it back on the same port. Used to test outages.
    pub fn stop(&mut self) -> Result<(), PgError> {
        if self.running {
            let data = self.data_dir();
            self.run(
                "pg_ctl",
                &["-D", path_str(&data), "-m", "fast", "-w", "stop"],
            )?;
            self.running = false;
        }
        Ok(())
    }

    /// Starts a stopped server again on the same port.
    pub fn restart(&mut self) -> Result<(), PgError> {
        if !self.running {
            self.start_server()?;
        }
        Ok(())
    }

    /// Copies the certificate and key where the server (maybe running as
    /// `postgres`) can read them, the key private as PostgreSQL insists.
    fn install_tls(&self, tls: PgTls) -> Result<(), PgError> {
        use std::os::unix::fs::PermissionsExt;
        for (from, name, mode) in [
            (&tls.cert, "server.crt", 0o644),
            (&tls.key, "server.key", 0o600),
        ] {
            let to = self.dir.path().join(name);
            std::fs::copy(from, &to).map_err(io("copying the TLS certificate or key"))?;
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(mode))
                .map_err(io("setting the TLS key's permissions"))?;
            if let Some((uid, gid)) = self.run_as {
                chown(&to, Some(uid), Some(gid))
                    .map_err(io("handing the TLS files to `postgres`"))?;
            }
        }
        Ok(())
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn start_server(&mut self) -> Result<(), PgError> {
        let data = self.data_dir();
        let sock = self.dir.path();
        let log = self.dir.path().join("server.log");
        let mut opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync={} -c full_page_writes={} -c max_connections=200",
            self.port,
            sock.display(),
            if self.options.fsync { "on" } else { "off" },
            if self.options.fsync { "on" } else { "off" },
        );
        if self.options.tls.is_some() {
            let dir = self.dir.path();
            opts.push_str(&format!(
                " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                dir.join("server.crt").display(),
                dir.join("server.key").display()
            ));
        }
        let result = self.run(
            "pg_ctl",
            &[
                "-D",
                path_str(&data),
                "-l",
                path_str(&log),
                "-o",
                &opts,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        match result {
            Ok(_) => {
                self.running = true;
                Ok(())
            }
            // Only a started server is marked running: any failure (pg_ctl
            // exiting non-zero, or not runnable at all) leaves it stopped.
            Err(PgError::Command { command, output }) => {
                let server_log = std::fs::read_to_string(&log).unwrap_or_default();
                Err(PgError::Command {
                    command,
                    output: format!("{output}\nserver log:\n{server_log}"),
                })
            }
            Err(e) => Err(e),
        }
    }

    fn run(&self, program: &str, args: &[&str]) -> Result<Output, PgError> {
        let mut cmd = Command::new(self.bin.join(program));
        cmd.args(args).current_dir(self.dir.path());
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid).gid(gid).env("HOME", self.dir.path());
        }
        let command = format!("{program} {}", args.join(" "));
        let out = cmd.output().map_err(io(format!("running {command}")))?;
        if !out.status.success() {
            return Err(PgError::Command {
                command,
                output: format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ),
            });
        }
        Ok(out)
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

impl Drop for PgInstance {
    fn drop(&mut self) {
        if self.running {
            let data = self.data_dir();
            let _ = self.run(
                "pg_ctl",
                &["-D", path_str(&data), "-m", "immediate", "-w", "stop"],
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn starts_stops_and_restarts_a_private_server() {
        let mut pg = PgInstance::start()
            .await
            .expect("private PostgreSQL (apt-get install -y postgresql)");
        let pool = sqlx::PgPool::connect(&pg.url()).await.unwrap();
        let one: i32 = sqlx::query_scalar("SELECT 1")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(one, 1);
        crate::migrate::run(&pool).await.unwrap();
        sqlx::query("CREATE TABLE t (x int)")
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("INSERT INTO t VALUES (7)")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        pg.stop().unwrap();
        assert!(
            <sqlx::PgConnection as sqlx::Connection>::connect(&pg.url())
                .await
                .is_err(),
            "server should be down"
        );
        pg.restart().unwrap();
        let pool = sqlx::PgPool::connect(&pg.url()).await.unwrap();
        let x: i32 = sqlx::query_scalar("SELECT x FROM t")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(x, 7, "data survives a stop and restart");
    }

    #[tokio::test]
    async fn a_failed_start_does_not_mark_the_server_running() {
        let mut pg = PgInstance::start()
            .await
            .expect("private PostgreSQL (apt-get install -y postgresql)");
        pg.stop().unwrap();
        let real_bin = std::mem::replace(&mut pg.bin, pg.dir.path().join("no-such-bin"));
        let err = pg.restart().expect_err("pg_ctl cannot even be run");
        assert!(matches!(err, PgError::Io { .. }), "{err:?}");
        assert!(!pg.running, "a server that never started is not running");
        pg.bin = real_bin;
        pg.restart().expect("starts again with the real binaries");
        assert!(pg.running);
    }
}
