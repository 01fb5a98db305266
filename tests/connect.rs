//! Connection security against real servers: PostgreSQL over TLS with the
//! certificate verified (what RDS with `rds.force_ssl` needs), through the
//! `prescient` binary's own flags.

mod common;

use std::path::Path;
use std::process::Command;

use prescient_infra::postgres::{PgInstance, PgOptions, PgTls};

/// `openssl` with `args` in `dir`; panics with its output on failure.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl (Debian package `openssl`)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`NAME.pem`, `NAME.key`) in `dir`.
fn make_ca(dir: &Path, name: &str) {
    let (pem, key) = (format!("{name}.pem"), format!("{name}.key"));
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN=prescient test {name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout",
            &key,
            "-out",
            &pem,
        ],
    );
}

/// `server.crt`/`server.key` for 127.0.0.1, signed by CA `ca`.
fn make_server_cert(dir: &Path, ca: &str) {
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
            "-out",
            "server.crt",
        ],
    );
}

fn migrate(url: &str) -> std::process::Output {
    common::prescient()
        .args(["migrate", "--database-url", url])
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run prescient migrate")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_tls_is_verified_against_the_given_ca() {
    let certs = tempfile::tempdir().unwrap();
    let dir = certs.path();
    make_ca(dir, "ca");
    make_ca(dir, "other-ca");
    make_server_cert(dir, "ca");
    let pg = PgInstance::start_with(PgOptions {
        tls: Some(PgTls {
            cert: dir.join("server.crt"),
            key: dir.join("server.key"),
        }),
        ..PgOptions::default()
    })
    .await
    .unwrap();
    let verified = format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        pg.url(),
        dir.join("ca.pem").display()
    );

    // The binary connects with the certificate verified, and migrates.
    let out = migrate(&verified);
    assert!(
        out.status.success(),
        "migrate over verified TLS failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The session really is encrypted.
    let pool = sqlx::PgPool::connect(&verified).await.unwrap();
    let ssl: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(ssl, "the connection is not TLS");
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(applied >= 1, "migrations were not applied");
    pool.close().await;

    // A server certificate from another CA is refused.
    let wrong_ca = format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        pg.url(),
        dir.join("other-ca.pem").display()
    );
    let out = migrate(&wrong_ca);
    assert!(
        !out.status.success(),
        "a certificate from another CA was accepted"
    );

    // Misconfiguration fails at start, by name.
    let out = migrate(&format!("{}?sslmode=verify_full", pg.url()));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("verify_full"),
        "{err}"
    );
    let out = migrate(&format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        pg.url(),
        dir.join("missing.pem").display()
    ));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("missing.pem"),
        "{err}"
    );
}
