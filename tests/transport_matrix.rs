//! gnet's test matrix, on one engine per cell serving TCP, UDP and a Unix
//! socket at once: {tcp, udp, unix} x {1 loop, 2 loops} x {SO_REUSEPORT,
//! acceptor with each balancer} x {write in the callback, async write from
//! another thread}; every byte checked.

mod util;

use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;

use netloom::{Action, Addr, Conn, ConnHandle, Handler, LoadBalancer, Options};
use util::*;

/// Echo that writes in the callback, or hands the bytes to one worker
/// thread that writes them through the connection's handle (one thread, so
/// a connection's echoes keep their order).
struct MatrixEcho {
    worker: Option<Mutex<mpsc::Sender<Echoing>>>,
}

/// An echo for the worker thread to write.
type Echoing = (ConnHandle<()>, Vec<u8>);

impl MatrixEcho {
    fn new(async_write: bool) -> MatrixEcho {
        if !async_write {
            return MatrixEcho { worker: None };
        }
        let (tx, rx) = mpsc::channel::<Echoing>();
        std::thread::spawn(move || {
            for (handle, data) in rx {
                // A closed connection's echo has nowhere to go.
                let _ = handle.async_write(data);
            }
        });
        MatrixEcho {
            worker: Some(Mutex::new(tx)),
        }
    }
}

impl Handler for MatrixEcho {
    type Context = ();
    fn on_traffic(&self, conn: &mut Conn<'_, ()>) -> Action {
        match &self.worker {
            None => Echo.on_traffic(conn),
            Some(worker) => {
                let data = conn.next(usize::MAX).to_vec();
                let handle = conn.handle();
                let _ = worker.lock().unwrap().send((handle, data));
                Action::None
            }
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Topology {
    ReusePort,
    Acceptor(LoadBalancer),
}

fn stream_clients(addr: &Addr, clients: usize, bytes: usize, salt: u64) {
    let conns: Vec<_> = (0..clients).map(|_| Client::connect(addr)).collect();
    std::thread::scope(|s| {
        for (i, c) in conns.iter().enumerate() {
            s.spawn(move || {
                for round in 0..4u64 {
                    let seed = salt * 1_000 + i as u64 * 10 + round;
                    client_roundtrip(c, &pattern(seed, bytes));
                }
            });
        }
    });
}

fn udp_clients(to: SocketAddr, clients: usize, datagrams: usize, salt: u64) {
    std::thread::scope(|s| {
        for i in 0..clients {
            s.spawn(move || {
                let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
                socket
                    .set_read_timeout(Some(Duration::from_secs(30)))
                    .unwrap();
                let mut buf = vec![0u8; 65_536];
                for d in 0..datagrams {
                    let seed = salt * 100_000 + i as u64 * 1_000 + d as u64;
                    let data = pattern(seed, 1 + (seed as usize * 131) % 4_000);
                    socket.send_to(&data, to).unwrap();
                    let (n, from) = socket.recv_from(&mut buf).expect("echo");
                    assert_eq!(from, to);
                    assert!(buf[..n] == data[..], "datagram {d} of client {i}");
                }
            });
        }
    });
}

fn cell(loops: usize, topology: Topology, async_write: bool) {
    let dir = TempDir::new("matrix");
    let unix = format!("unix://{}", dir.path("m.sock").display());
    let mut options = Options::default().loops(loops);
    options = match topology {
        Topology::ReusePort => options.reuseport(true),
        Topology::Acceptor(lb) => options.load_balancer(lb),
    };
    let engine = start_on(
        MatrixEcho::new(async_write),
        &["tcp://127.0.0.1:0", "udp://127.0.0.1:0", &unix],
        options,
    );
    let [tcp, udp, unix] = engine.local_addrs() else {
        panic!("three addresses")
    };
    let salt = loops as u64 * 10 + async_write as u64;
    std::thread::scope(|s| {
        s.spawn(|| stream_clients(tcp, 6, 64 * 1024, salt));
        s.spawn(|| stream_clients(unix, 6, 64 * 1024, salt + 1));
        s.spawn(|| udp_clients(udp.inet().unwrap(), 6, 100, salt));
    });
    assert!(
        wait_until(Duration::from_secs(30), || engine.conn_count() == 0),
        "every stream closed"
    );
    stop(engine);
}

fn all_topologies(loops: usize, async_write: bool) {
    for topology in [
        Topology::ReusePort,
        Topology::Acceptor(LoadBalancer::RoundRobin),
        Topology::Acceptor(LoadBalancer::LeastConnections),
        Topology::Acceptor(LoadBalancer::SourceAddrHash),
    ] {
        eprintln!("cell: {loops} loop(s), {topology:?}, async write {async_write}");
        cell(loops, topology, async_write);
    }
}

#[test]
fn one_loop_write_in_callback() {
    all_topologies(1, false);
}

#[test]
fn one_loop_async_write() {
    all_topologies(1, true);
}

#[test]
fn several_loops_write_in_callback() {
    all_topologies(2, false);
}

#[test]
fn several_loops_async_write() {
    all_topologies(2, true);
}
