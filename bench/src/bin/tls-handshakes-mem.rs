//! rustls's own full-handshake rate on one core, in memory: no sockets, no
//! event loop, the reference the `tls-handshakes` scenario is held to.
//!
//! `tls-handshakes-mem --tls-cert PEM --tls-key PEM [--duration 3]`
//!
//! Runs full TLS 1.3 handshakes (the client keeps no sessions, so none
//! resumes) between a rustls client and the peers' server configuration
//! (aws-lc-rs, the same certificate) for `--duration` seconds, counting only
//! the CPU time of the server side's calls (this thread's CPU clock, so a
//! busy machine's other processes do not count). Prints one JSON line:
//! `{"handshakes":N,"server_seconds":S,"server_handshakes_per_s":R}`, and on
//! stderr what the first handshake negotiated (wrk's OpenSSL gets the same:
//! TLS 1.3, X25519, AES-256-GCM-SHA384).

use std::io::Cursor;
use std::sync::Arc;
use std::time::{Duration, Instant};

use netloom_bench::flags::Flags;
use tokio_rustls::rustls::client::Resumption;
use tokio_rustls::rustls::crypto::aws_lc_rs;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConnection};

fn main() {
    let flags = Flags::parse(
        "tls-handshakes-mem",
        "--tls-cert PEM --tls-key PEM [--duration 3]",
    );
    let cert = flags.text("tls-cert", "");
    let key = flags.text("tls-key", "");
    let duration = Duration::from_secs_f64(flags.get("duration", 3.0));
    let server_config = netloom_bench::tls::server_config("tls-handshakes-mem", &cert, &key);
    let mut roots = RootCertStore::empty();
    for der in CertificateDer::pem_file_iter(&cert).expect("the certificate loads") {
        roots
            .add(der.expect("a certificate"))
            .expect("a CA certificate");
    }
    let mut client_config =
        ClientConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
    client_config.resumption = Resumption::disabled();
    client_config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let client_config = Arc::new(client_config);
    let name = ServerName::try_from("localhost").expect("a server name");

    let (mut handshakes, mut server_time) = (0u64, Duration::ZERO);
    let end = Instant::now() + duration;
    while Instant::now() < end {
        let mut client = ClientConnection::new(client_config.clone(), name.clone()).unwrap();
        let mut server = None;
        while client.is_handshaking()
            || server
                .as_ref()
                .is_none_or(|s: &ServerConnection| s.is_handshaking())
        {
            let mut to_server = Vec::new();
            while client.wants_write() {
                client.write_tls(&mut to_server).unwrap();
            }
            let started = thread_cpu_time();
            let server =
                server.get_or_insert_with(|| ServerConnection::new(server_config.clone()).unwrap());
            let mut input = Cursor::new(to_server);
            while (input.position() as usize) < input.get_ref().len() {
                server.read_tls(&mut input).unwrap();
                server
                    .process_new_packets()
                    .expect("the server accepts the handshake");
            }
            let mut to_client = Vec::new();
            while server.wants_write() {
                server.write_tls(&mut to_client).unwrap();
            }
            server_time += thread_cpu_time().saturating_sub(started);
            let mut input = Cursor::new(to_client);
            while (input.position() as usize) < input.get_ref().len() {
                client.read_tls(&mut input).unwrap();
                client
                    .process_new_packets()
                    .expect("the client accepts the handshake");
            }
        }
        handshakes += 1;
        if handshakes == 1 {
            let server = server.as_ref().expect("a server side");
            eprintln!(
                "tls-handshakes-mem: {:?}, {:?}, {:?}",
                server.protocol_version(),
                server.negotiated_cipher_suite().map(|s| s.suite()),
                server.negotiated_key_exchange_group().map(|g| g.name()),
            );
        }
    }
    let seconds = server_time.as_secs_f64();
    println!(
        "{{\"handshakes\":{handshakes},\"server_seconds\":{seconds:.3},\"server_handshakes_per_s\":{:.0}}}",
        handshakes as f64 / seconds
    );
}

/// The CPU time this thread has used.
fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into `now`, which is ours.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(rc, 0, "CLOCK_THREAD_CPUTIME_ID is readable");
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}
