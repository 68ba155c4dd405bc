//! Black-box tests of `examples/tasks_in_callbacks.rs`: tasks spawned by
//! callbacks answer later without blocking the loop, the per-connection
//! watchdog task closes idle connections, bad lines close only their own.

mod util;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use util::ExampleServer;

fn client(server: &ExampleServer) -> (TcpStream, BufReader<TcpStream>) {
    let stream = util::connect(server.addr);
    let reader = BufReader::new(stream.try_clone().unwrap());
    (stream, reader)
}

fn line(reader: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).expect("a reply line");
    line
}

#[test]
fn sleeping_tasks_do_not_block_the_loop() {
    let server = ExampleServer::start(
        "tasks_in_callbacks",
        &["--addr", "tcp://127.0.0.1:0", "--loops", "1"],
    );
    let began = Instant::now();
    let clients: Vec<_> = (0..50)
        .map(|i| {
            let (mut stream, mut reader) = client(&server);
            let ms = 1000 + i;
            stream
                .write_all(format!("SLEEP {ms}\nPING\n").as_bytes())
                .unwrap();
            std::thread::spawn(move || {
                // The callback answers PING at once; the task answers later.
                assert_eq!(line(&mut reader), "PONG\n");
                assert_eq!(line(&mut reader), format!("WOKE {ms}\n"));
            })
        })
        .collect();
    for c in clients {
        c.join().expect("client saw PONG then WOKE");
    }
    // 50 sleeps of about 1 s one after the other would take 50 s.
    let took = began.elapsed();
    assert!(
        took < Duration::from_secs(25),
        "50 concurrent sleeps took {took:?}"
    );
    assert!(server.terminate().success());
}

#[test]
fn the_watchdog_closes_idle_connections_only() {
    let server = ExampleServer::start(
        "tasks_in_callbacks",
        &[
            "--addr",
            "tcp://127.0.0.1:0",
            "--loops",
            "2",
            "--idle-ms",
            "1500",
        ],
    );
    let (silent, mut silent_reader) = client(&server);
    silent
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let (mut busy, mut busy_reader) = client(&server);
    // The silent one is told and closed while the busy one, never quiet for
    // more than ~100 ms of its 1.5 s, keeps talking.
    let told = std::thread::spawn(move || {
        let said = line(&mut silent_reader);
        let mut rest = Vec::new();
        let eof = silent_reader.read_to_end(&mut rest).unwrap() == 0;
        (said, eof)
    });
    let give_up = Instant::now() + Duration::from_secs(60);
    while !told.is_finished() && Instant::now() < give_up {
        busy.write_all(b"PING\n").unwrap();
        assert_eq!(line(&mut busy_reader), "PONG\n");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (said, eof) = told.join().unwrap();
    assert_eq!(said, "ERR idle\n");
    assert!(eof, "then EOF");
    // The busy one is still served.
    busy.write_all(b"PING\n").unwrap();
    assert_eq!(line(&mut busy_reader), "PONG\n");
    assert!(server.terminate().success());
}

#[test]
fn bad_lines_close_only_their_connection() {
    let server = ExampleServer::start("tasks_in_callbacks", &["--addr", "tcp://127.0.0.1:0"]);
    let (mut good, mut good_reader) = client(&server);
    let (mut bad, mut bad_reader) = client(&server);
    bad.write_all(b"FROB 1\n").unwrap();
    assert_eq!(line(&mut bad_reader), "ERR unknown command\n");
    // A known command with a bad argument says so, whatever the argument.
    for sleep in [
        "SLEEP 999999",
        "SLEEP 99999999999",
        "SLEEP",
        "SLEEP -1",
        "SLEEP x",
    ] {
        bad.write_all(format!("{sleep}\n").as_bytes()).unwrap();
        assert_eq!(
            line(&mut bad_reader),
            "ERR SLEEP takes milliseconds from 0 to 10000\n",
            "{sleep}"
        );
    }
    bad.write_all(&[b'x'; 4096]).unwrap();
    assert_eq!(line(&mut bad_reader), "ERR line too long\n");
    let mut rest = Vec::new();
    assert_eq!(bad_reader.read_to_end(&mut rest).unwrap(), 0, "then EOF");
    good.write_all(b"PING\n").unwrap();
    assert_eq!(line(&mut good_reader), "PONG\n");
    assert!(server.terminate().success());
}
