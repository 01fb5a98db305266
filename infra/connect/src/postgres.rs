//! PostgreSQL TLS, configured in the database URL the way libpq reads it:
//! `sslmode` (`disable`, `prefer`, `require`, `verify-ca`, `verify-full`) and
//! `sslrootcert` (the CA bundle; for Amazon RDS the regional or global bundle
//! from AWS). sqlx is built with rustls, so no system OpenSSL is involved.
//!
//! [`check_url`] runs before the first connection: a misspelt mode or a CA
//! file that is not there fails at start with a message that names it,
//! instead of a late handshake error or a silent plaintext fallback.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgSslMode};

use crate::ConnectError;

/// Checks a `postgres://` URL's TLS parameters the way the connection will
/// read them (sqlx's own URL parser: `sslmode`, and `PGSSLMODE` when the URL
/// has none) and that a given `sslrootcert` is a file; returns the `sslmode`
/// in force (`prefer` when unset, as libpq).
pub fn check_url(url: &str) -> Result<PgSslMode, ConnectError> {
    let options =
        PgConnectOptions::from_str(url).map_err(|e| ConnectError::Postgres(e.to_string()))?;
    let parsed = url::Url::parse(url).map_err(|e| ConnectError::Postgres(e.to_string()))?;
    let mut root_cert = false;
    for (key, path) in parsed.query_pairs() {
        if matches!(&*key, "sslrootcert" | "ssl-root-cert" | "ssl-ca") {
            if !std::path::Path::new(&*path).is_file() {
                return Err(ConnectError::Postgres(format!(
                    "sslrootcert={path} is not a readable file"
                )));
            }
            root_cert = true;
        }
    }
    let mode = options.get_ssl_mode();
    if !root_cert && matches!(mode, PgSslMode::VerifyCa | PgSslMode::VerifyFull) {
        tracing::info!(
            sslmode = ?mode,
            "no sslrootcert: the server certificate is checked against the built-in web PKI roots"
        );
    }
    Ok(mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_and_root_certs_are_checked() {
        assert!(matches!(
            check_url("postgres://h/db").unwrap(),
            PgSslMode::Prefer
        ));
        assert!(matches!(
            check_url("postgres://h/db?sslmode=require").unwrap(),
            PgSslMode::Require
        ));
        assert!(matches!(
            check_url("postgres://h/db?sslmode=VERIFY-FULL").unwrap(),
            PgSslMode::VerifyFull
        ));
        let e = check_url("postgres://h/db?sslmode=verify_full").unwrap_err();
        assert!(e.to_string().contains("verify_full"), "{e}");
        let e =
            check_url("postgres://h/db?sslmode=verify-full&sslrootcert=/nope/ca.pem").unwrap_err();
        assert!(e.to_string().contains("/nope/ca.pem"), "{e}");
        let dir = std::env::temp_dir().join(format!("prescient connect {}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, "x").unwrap();
        let url = format!(
            "postgres://h/db?sslrootcert={}&sslmode=verify-ca",
            ca.display().to_string().replace(' ', "%20")
        );
        assert!(matches!(check_url(&url).unwrap(), PgSslMode::VerifyCa));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
