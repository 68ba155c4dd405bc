// cargo run --release --bin udp-load -- --addr 127.0.0.1:19700 --size 64 --flows 16 --window 8 --duration 5 --warmup 1 [--server-pid PID]
//! UDP echo load generator: `flows` connected sockets (distinct source
//! ports), each keeping `window` datagrams in flight, on one busy-polling
//! thread with recvmmsg/sendmmsg. Every echoed datagram is checked (length,
//! sequence header, payload). A flow silent for 20 ms is assumed to have lost
//! its datagrams and is refilled (UDP may drop under load; the count of
//! refills is reported).
//!
//! Prints datagrams/s echoed and, with `--server-pid`, the server's CPU time
//! per echoed datagram (from /proc/PID/stat), so servers can be compared even
//! when this generator saturates its own core.

use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

const BATCH: usize = 64;
const SILENCE: Duration = Duration::from_millis(20);

struct Flow {
    socket: UdpSocket,
    outstanding: usize,
    next_seq: u64,
    last_heard: Instant,
}

fn main() {
    let mut addr = "127.0.0.1:19700".to_string();
    let (mut size, mut flows, mut window) = (64usize, 16usize, 8usize);
    let (mut duration, mut warmup) = (5.0f64, 1.0f64);
    let mut server_pid: Option<u32> = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().expect("every flag takes a value");
        match flag.as_str() {
            "--addr" => addr = value,
            "--size" => size = value.parse().unwrap(),
            "--flows" => flows = value.parse().unwrap(),
            "--window" => window = value.parse().unwrap(),
            "--duration" => duration = value.parse().unwrap(),
            "--warmup" => warmup = value.parse().unwrap(),
            "--server-pid" => server_pid = Some(value.parse().unwrap()),
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(size >= 8, "datagrams carry an 8-byte sequence number");
    let template: Vec<u8> = (0..size).map(|i| (i * 7 + 3) as u8).collect();
    let now = Instant::now();
    let mut flows: Vec<Flow> = (0..flows)
        .map(|_| {
            let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
            socket.connect(&addr).unwrap();
            socket.set_nonblocking(true).unwrap();
            Flow {
                socket,
                outstanding: 0,
                next_seq: 0,
                last_heard: now,
            }
        })
        .collect();

    let mut out = vec![vec![0u8; size]; BATCH];
    let mut inb = vec![vec![0u8; 65_536]; BATCH];
    let mut echoed: u64 = 0;
    let mut refills: u64 = 0;
    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(warmup);
    let end = measure_from + Duration::from_secs_f64(duration);
    let mut mark: Option<(Instant, u64, u64)> = None;
    loop {
        let now = Instant::now();
        if mark.is_none() && now >= measure_from {
            mark = Some((now, echoed, server_cpu_ticks(server_pid)));
        }
        if now >= end {
            break;
        }
        for flow in &mut flows {
            let fd = flow.socket.as_raw_fd();
            // Take every echo waiting on this flow.
            loop {
                let got = recv_batch(fd, &mut inb);
                for (buf, len) in inb.iter().zip(&got) {
                    assert_eq!(*len, size, "echo of the wrong length");
                    assert!(buf[8..size] == template[8..], "echo with wrong bytes");
                    let seq = u64::from_le_bytes(buf[..8].try_into().unwrap());
                    assert!(seq < flow.next_seq, "echo of a datagram never sent");
                }
                if !got.is_empty() {
                    flow.outstanding = flow.outstanding.saturating_sub(got.len());
                    flow.last_heard = now;
                    echoed += got.len() as u64;
                }
                if got.len() < BATCH {
                    break;
                }
            }
            if flow.outstanding > 0 && now - flow.last_heard > SILENCE {
                refills += 1;
                flow.outstanding = 0;
                flow.last_heard = now;
            }
            // Top the window up.
            let missing = (window - flow.outstanding).min(BATCH);
            if missing > 0 {
                for buf in out.iter_mut().take(missing) {
                    buf.copy_from_slice(&template);
                    buf[..8].copy_from_slice(&flow.next_seq.to_le_bytes());
                    flow.next_seq += 1;
                }
                let sent = send_batch(fd, &out[..missing]);
                flow.outstanding += sent;
                // Unsent sequence numbers are simply skipped.
            }
        }
    }
    let (t0, n0, cpu0) = mark.expect("the run lasted past the warm-up");
    let elapsed = t0.elapsed().as_secs_f64();
    let count = echoed - n0;
    let rate = count as f64 / elapsed;
    let mut line = format!(
        "size={size} flows={} window={window} datagrams/s={rate:.0} echoed={count} refills={refills}",
        flows.len()
    );
    if server_pid.is_some() {
        let ticks = server_cpu_ticks(server_pid) - cpu0;
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        let cpu_s = ticks as f64 / hz;
        line += &format!(
            " srv-cpu={:.0}% srv-us/op={:.3}",
            100.0 * cpu_s / elapsed,
            cpu_s * 1e6 / count.max(1) as f64
        );
    }
    println!("{line}");
}

/// utime + stime of `pid` in clock ticks (0 without a pid).
fn server_cpu_ticks(pid: Option<u32>) -> u64 {
    let Some(pid) = pid else { return 0 };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("server alive");
    // Fields after the command name (which may contain spaces).
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// recvmmsg on a connected socket; returns the lengths received.
fn recv_batch(fd: i32, bufs: &mut [Vec<u8>]) -> Vec<usize> {
    let mut iovs: Vec<libc::iovec> = bufs
        .iter_mut()
        .map(|b| libc::iovec {
            iov_base: b.as_mut_ptr().cast(),
            iov_len: b.len(),
        })
        .collect();
    let mut hdrs: Vec<libc::mmsghdr> = iovs
        .iter_mut()
        .map(|iov| {
            // SAFETY: all-zero bytes are a valid mmsghdr.
            let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
            h.msg_hdr.msg_iov = iov;
            h.msg_hdr.msg_iovlen = 1;
            h
        })
        .collect();
    // SAFETY: each header points at its own iovec over a live buffer.
    let n = unsafe {
        libc::recvmmsg(
            fd,
            hdrs.as_mut_ptr(),
            hdrs.len() as u32,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    if n <= 0 {
        return Vec::new();
    }
    hdrs[..n as usize].iter().map(|h| h.msg_len as usize).collect()
}

/// sendmmsg on a connected socket; returns how many were sent.
fn send_batch(fd: i32, bufs: &[Vec<u8>]) -> usize {
    let mut iovs: Vec<libc::iovec> = bufs
        .iter()
        .map(|b| libc::iovec {
            iov_base: b.as_ptr() as *mut libc::c_void,
            iov_len: b.len(),
        })
        .collect();
    let mut hdrs: Vec<libc::mmsghdr> = iovs
        .iter_mut()
        .map(|iov| {
            // SAFETY: all-zero bytes are a valid mmsghdr.
            let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
            h.msg_hdr.msg_iov = iov;
            h.msg_hdr.msg_iovlen = 1;
            h
        })
        .collect();
    // SAFETY: each header points at its own iovec over a live buffer; the
    // kernel only reads them.
    let n = unsafe { libc::sendmmsg(fd, hdrs.as_mut_ptr(), hdrs.len() as u32, libc::MSG_DONTWAIT) };
    n.max(0) as usize
}
