//! PostgreSQL TLS, configured in the database URL the way libpq reads it:
//! `sslmode` (`disable`, `prefer`, `require`, `verify-ca`, `verify-full`) and
//! `sslrootcert` (the CA bundle; for Amazon RDS the regional or global bundle
//! from AWS). sqlx is built with rustls, so no system OpenSSL is involved.
//!
//! [`check_url`] runs before the first connection: a misspelt mode or a CA
//! file that is not there fails at start with a message that names it,
//! instead of a late handshake error or a silent plaintext fallback.

use crate::ConnectError;

/// The `sslmode` values libpq (and sqlx) accept.
pub const SSL_MODES: [&str; 6] = [
    "disable",
    "allow",
    "prefer",
    "require",
    "verify-ca",
    "verify-full",
];

/// Checks a `postgres://` URL's TLS parameters; returns the `sslmode` in
/// force (`prefer` when unset, as libpq).
pub fn check_url(url: &str) -> Result<&str, ConnectError> {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    let mut mode = "prefer";
    let mut root_cert = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "sslmode" | "ssl-mode" => mode = v,
            "sslrootcert" | "ssl-root-cert" => root_cert = Some(v),
            _ => {}
        }
    }
    let mode = SSL_MODES
        .iter()
        .find(|m| m.eq_ignore_ascii_case(mode))
        .copied()
        .ok_or_else(|| {
            ConnectError::Postgres(format!(
                "sslmode={mode:?} is not one of {}",
                SSL_MODES.join(", ")
            ))
        })?;
    if let Some(path) = root_cert {
        let path = percent_decode(path);
        if !std::path::Path::new(&path).is_file() {
            return Err(ConnectError::Postgres(format!(
                "sslrootcert={path} is not a readable file"
            )));
        }
    } else if mode == "verify-ca" || mode == "verify-full" {
        tracing::info!(
            sslmode = mode,
            "no sslrootcert: the server certificate is checked against the built-in web PKI roots"
        );
    }
    Ok(mode)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_and_root_certs_are_checked() {
        assert_eq!(check_url("postgres://h/db").unwrap(), "prefer");
        assert_eq!(
            check_url("postgres://h/db?sslmode=require").unwrap(),
            "require"
        );
        assert_eq!(
            check_url("postgres://h/db?sslmode=VERIFY-FULL").unwrap(),
            "verify-full"
        );
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
        assert_eq!(check_url(&url).unwrap(), "verify-ca");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
