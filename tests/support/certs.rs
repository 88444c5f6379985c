//! Key material for test registries, made with the `openssl` CLI.
//!
//! Generating keys is the slow part of starting a registry, so each kind of
//! material is made once per test process and kept in memory; every registry
//! writes its own copy into its temporary directory.
// Each test binary uses a different part of the harness.
#![allow(dead_code)]

use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

/// A CA and a server certificate it signed, valid for `127.0.0.1` and `localhost`.
pub struct TlsCertificates {
    /// PEM of the self-signed CA: what a client must trust.
    pub ca_pem: String,
    /// PEM of the server certificate (SAN `IP:127.0.0.1`, `DNS:localhost`).
    pub cert_pem: String,
    /// PEM of the server certificate's private key.
    pub key_pem: String,
}

/// The RSA key a token server signs JWTs with, and its self-signed certificate.
pub struct TokenSigningKey {
    /// The private key as PKCS#8 DER, the form `ring` loads.
    pub pkcs8_der: Vec<u8>,
    /// The self-signed certificate as PEM: the registry's `rootcertbundle`.
    pub cert_pem: String,
    /// The same certificate as DER: what goes into the JWT `x5c` header.
    pub cert_der: Vec<u8>,
}

/// TLS certificates shared by every TLS registry of this test process.
pub fn tls_certificates() -> &'static TlsCertificates {
    static CERTS: OnceLock<TlsCertificates> = OnceLock::new();
    CERTS.get_or_init(make_tls_certificates)
}

/// The token signing key shared by every token server of this test process.
pub fn token_signing_key() -> &'static TokenSigningKey {
    static KEY: OnceLock<TokenSigningKey> = OnceLock::new();
    KEY.get_or_init(make_token_signing_key)
}

fn make_tls_certificates() -> TlsCertificates {
    let dir = tempfile::tempdir().expect("create a temporary directory for TLS certificates");
    let d = dir.path();
    // P-256 keys: quick to generate, understood by Go's TLS stack and rustls.
    openssl(
        d,
        "req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
         -keyout ca.key -out ca.pem -subj /CN=hoist-test-ca -days 2 \
         -addext basicConstraints=critical,CA:TRUE \
         -addext keyUsage=critical,keyCertSign,cRLSign",
    );
    openssl(
        d,
        "req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
         -keyout server.key -out server.csr -subj /CN=localhost",
    );
    fs::write(
        d.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n\
         basicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature\n\
         extendedKeyUsage=serverAuth\n",
    )
    .expect("write the server certificate extensions file");
    openssl(
        d,
        "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
         -out server.pem -days 2 -extfile server.ext",
    );
    TlsCertificates {
        ca_pem: read_text(&d.join("ca.pem")),
        cert_pem: read_text(&d.join("server.pem")),
        key_pem: read_text(&d.join("server.key")),
    }
}

fn make_token_signing_key() -> TokenSigningKey {
    let dir = tempfile::tempdir().expect("create a temporary directory for the token key");
    let d = dir.path();
    openssl(
        d,
        "genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out token.key",
    );
    openssl(
        d,
        "pkcs8 -topk8 -nocrypt -in token.key -outform DER -out token.pk8",
    );
    openssl(
        d,
        "req -x509 -new -key token.key -subj /CN=hoist-token -days 2 -out token.pem",
    );
    openssl(d, "x509 -in token.pem -outform DER -out token.der");
    TokenSigningKey {
        pkcs8_der: fs::read(d.join("token.pk8")).expect("read the PKCS#8 token key"),
        cert_pem: read_text(&d.join("token.pem")),
        cert_der: fs::read(d.join("token.der")).expect("read the DER token certificate"),
    }
}

/// Runs `openssl ARGS` in `dir` (`args` split at spaces), panicking with its
/// output when it fails.
fn openssl(dir: &Path, args: &str) {
    let output = Command::new("openssl")
        .args(args.split_whitespace())
        .current_dir(dir)
        .output()
        .expect("run the openssl CLI (is openssl installed?)");
    assert!(
        output.status.success(),
        "openssl {} failed ({}):\n{}{}",
        args,
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
}

fn read_text(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}
