//! floor-echo echoes every byte in order, through back-pressure (a client
//! that does not read for a while) and up to the client's end of stream.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The floor server, killed when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start() -> (Server, u16) {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let server = Server(
        Command::new(env!("CARGO_BIN_EXE_floor-echo"))
            .args(["--addr", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .spawn()
            .expect("start floor-echo"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "floor-echo is not listening");
        thread::sleep(Duration::from_millis(20));
    }
    (server, port)
}

/// Bytes whose order matters: a dropped, repeated or swapped 4 KiB block
/// changes them.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ ((i >> 12) as u8) ^ seed)
        .collect()
}

/// Sends `data` and closes its sending side, while reading back only after
/// `read_after` (so the server meets a full socket); returns what came back
/// before the server closed.
fn round_trip(port: u16, data: Vec<u8>, read_after: Duration) -> Vec<u8> {
    let mut socket = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    socket
        .set_write_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut writer = socket.try_clone().expect("clone");
    let sender = thread::spawn(move || {
        writer.write_all(&data).expect("send");
        writer.shutdown(Shutdown::Write).expect("shutdown");
    });
    thread::sleep(read_after);
    let mut back = Vec::new();
    socket.read_to_end(&mut back).expect("read back");
    sender.join().expect("sender");
    back
}

#[test]
fn echoes_every_byte_through_back_pressure_and_end_of_stream() {
    let (_server, port) = start();
    // 32 MiB outgrow the loopback socket buffers on both sides: the server's
    // writes come up short while the client is not reading.
    let big = pattern(32 << 20, 0);
    let clients: Vec<_> = (0..3u8)
        .map(|seed| {
            let data = if seed == 0 {
                big.clone()
            } else {
                pattern(100_000 + seed as usize, seed)
            };
            thread::spawn(move || {
                let back = round_trip(port, data.clone(), Duration::from_millis(500));
                assert_eq!(back.len(), data.len(), "client {seed}: length");
                assert!(back == data, "client {seed}: bytes differ");
            })
        })
        .collect();
    for client in clients {
        client.join().expect("client");
    }
    // Still serving after those connections closed.
    let small = pattern(64, 9);
    assert_eq!(round_trip(port, small.clone(), Duration::ZERO), small);
}
