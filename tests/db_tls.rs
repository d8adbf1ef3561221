//! TLS to Postgres as hosted Supabase needs it, against a real server with
//! TLS on (a private cluster with a certificate from a throwaway CA, made by openssl):
//! libpq's sslmode is honoured, a certificate is verified only when asked to,
//! and verification uses the sslrootcert file.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod common;

use common::*;
use std::process::Command;

/// A private cluster serving TLS with a certificate for 127.0.0.1; returns it
/// and the path of the CA certificate that signed it.
fn args(first: &[&str], rest: &[&std::path::Path]) -> Vec<std::ffi::OsString> {
    first
        .iter()
        .map(|a| a.into())
        .chain(rest.iter().map(|p| p.as_os_str().to_owned()))
        .collect()
}

fn tls_cluster() -> (Cluster, String) {
    let cluster = Cluster::start_private("tls");
    let data = cluster.dir.join("data");
    let (cert, key) = (data.join("server.crt"), data.join("server.key"));
    let ca = cluster.dir.join("ca.pem");
    let ca_key = cluster.dir.join("ca.key");
    let csr = cluster.dir.join("server.csr");
    let ext = cluster.dir.join("server.ext");
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    // a CA, and a server certificate it signs (webpki refuses a CA as the server's own)
    let steps: [Vec<std::ffi::OsString>; 3] = [
        args(
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=callsync test CA",
                "-keyout",
            ],
            &[&ca_key, "-out".as_ref(), &ca],
        ),
        args(
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=127.0.0.1",
                "-keyout",
            ],
            &[&key, "-out".as_ref(), &csr],
        ),
        args(
            &["x509", "-req", "-days", "2", "-CAcreateserial", "-in"],
            &[
                &csr,
                "-CA".as_ref(),
                &ca,
                "-CAkey".as_ref(),
                &ca_key,
                "-extfile".as_ref(),
                &ext,
                "-out".as_ref(),
                &cert,
            ],
        ),
    ];
    for step in steps {
        let out = Command::new("openssl").args(&step).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let copy = ca;
    // the server runs as the `postgres` system user when the tests run as root
    let _ = Command::new("chown")
        .args(["postgres:postgres"])
        .arg(&cert)
        .arg(&key)
        .status();
    let _ = Command::new("chmod").arg("600").arg(&key).status();
    let conf = data.join("postgresql.conf");
    let mut text = std::fs::read_to_string(&conf).unwrap();
    text.push_str("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
    std::fs::write(&conf, text).unwrap();
    cluster.down();
    cluster.up();
    (cluster, copy.display().to_string())
}

async fn uses_tls(url: &str) -> Result<bool, String> {
    let (client, conn) = callsync::db::connect(url)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let row = client
        .query_one(
            "select ssl from pg_stat_ssl where pid = pg_backend_pid()",
            &[],
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(row.get(0))
}

#[tokio::test]
async fn sslmode_is_honoured_and_certificates_are_verified_only_when_asked() {
    let (cluster, ca) = tls_cluster();
    let url = cluster.url("postgres", "postgres");

    assert_eq!(
        uses_tls(&format!("{url}?sslmode=require")).await,
        Ok(true),
        "require encrypts"
    );
    assert_eq!(
        uses_tls(&format!("{url}?sslmode=prefer")).await,
        Ok(true),
        "prefer takes TLS when offered"
    );
    assert_eq!(
        uses_tls(&url).await,
        Ok(false),
        "loopback without sslmode stays plain"
    );
    assert_eq!(uses_tls(&format!("{url}?sslmode=disable")).await, Ok(false));
    assert_eq!(
        uses_tls(&format!("{url}?sslmode=verify-full&sslrootcert={ca}")).await,
        Ok(true),
        "verified against the given CA"
    );
    let unverifiable = uses_tls(&format!("{url}?sslmode=verify-full")).await;
    assert!(
        unverifiable.as_ref().is_err_and(|e| e.contains("TLS handshake")),
        "a certificate from an unknown CA fails verification against public roots: {unverifiable:?}"
    );

    // the worker's pool on a TLS connection
    let pool = callsync::db::pool(&format!("{url}?sslmode=require"), 2).unwrap();
    let client = pool.get().await.unwrap();
    let ssl: bool = client
        .query_one(
            "select ssl from pg_stat_ssl where pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(ssl);
}
