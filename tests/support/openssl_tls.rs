//! A TLS 1.3 terminator made with Python's `ssl` module (OpenSSL) in front
//! of a plain test registry: the way nginx, HAProxy or Apache front
//! Harbor, Artifactory, Nexus or GitLab. OpenSSL sends its session tickets
//! after the client's Finished, where Go's server (the registries' own TLS)
//! sends them with its handshake, so a client that asks a fresh connection
//! whether it is still open finds unread bytes only here.
// Each test binary uses a different part of the harness.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use super::certs::tls_certificates;
use super::registry::spawn_tied_to_test_process;

const TERMINATOR: &str = r#"
import select, socket, ssl, sys, threading
certificate, key, upstream_port = sys.argv[1], sys.argv[2], int(sys.argv[3])
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.minimum_version = ssl.TLSVersion.TLSv1_3
context.load_cert_chain(certificate, key)

def serve(raw):
    try:
        # The handshake, and right after it OpenSSL's session tickets.
        client = context.wrap_socket(raw, server_side=True)
        upstream = socket.create_connection(("127.0.0.1", upstream_port))
    except OSError:
        raw.close()
        return
    try:
        while True:
            ready = [client] if client.pending() else \
                select.select([client, upstream], [], [])[0]
            for side in ready:
                data = side.recv(65536)
                if not data:
                    return
                (upstream if side is client else client).sendall(data)
    except OSError:
        pass
    finally:
        client.close()
        upstream.close()

listener = socket.create_server(("127.0.0.1", 0))
print(listener.getsockname()[1], flush=True)
while True:
    connection, _ = listener.accept()
    threading.Thread(target=serve, args=(connection,), daemon=True).start()
"#;

/// A running terminator; killed on drop.
pub struct OpensslTls {
    child: Child,
    address: String,
    /// The CA a client must trust.
    pub ca_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl OpensslTls {
    /// Terminates TLS 1.3 on a free loopback port and forwards the bytes to
    /// `upstream_port` on loopback.
    pub fn start(upstream_port: u16) -> OpensslTls {
        let dir = tempfile::tempdir().expect("temporary directory");
        let certificates = tls_certificates();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).expect("write key material");
            path
        };
        let certificate = write("server.crt", &certificates.cert_pem);
        let key = write("server.key", &certificates.key_pem);
        let ca_file = write("ca.crt", &certificates.ca_pem);
        let mut command = Command::new("python3");
        command
            .args(["-c", TERMINATOR])
            .arg(&certificate)
            .arg(&key)
            .arg(upstream_port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        let mut child = spawn_tied_to_test_process(command).expect("spawn python3");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("the terminator's stdout"))
            .read_line(&mut line)
            .expect("read the terminator's port");
        let port = line.trim();
        assert!(!port.is_empty(), "the TLS terminator printed no port");
        OpensslTls {
            address: format!("127.0.0.1:{port}"),
            child,
            ca_file,
            _dir: dir,
        }
    }

    /// `127.0.0.1:PORT`, where clients connect over TLS.
    pub fn host(&self) -> &str {
        &self.address
    }
}

impl Drop for OpensslTls {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
