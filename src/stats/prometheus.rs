//! The Prometheus text exposition (format 0.0.4) of [`Stats`]: one family
//! per figure, named `netloom_…`, with `HELP` and `TYPE` lines; counters end
//! in `_total`; every sample carries its loop as `loop="N"` (sum them in the
//! query for the engine's total).

use std::fmt::{self, Write};

use super::{ErrorKind, LoopStats, Stats};

/// A family's kind, as its `TYPE` line says.
#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
}

/// One family of samples, one per loop.
struct Family {
    name: &'static str,
    kind: Kind,
    help: &'static str,
    value: fn(&LoopStats) -> u64,
}

const FAMILIES: [Family; 11] = [
    Family {
        name: "netloom_open_connections",
        kind: Kind::Gauge,
        help: "Connections the loop serves now.",
        value: |l| l.open_connections,
    },
    Family {
        name: "netloom_accepted_connections_total",
        kind: Kind::Counter,
        help: "Connections accepted from a listener and registered on the loop.",
        value: |l| l.accepted,
    },
    Family {
        name: "netloom_dialed_connections_total",
        kind: Kind::Counter,
        help: "Outbound connections started on the loop.",
        value: |l| l.dialed,
    },
    Family {
        name: "netloom_closed_connections_total",
        kind: Kind::Counter,
        help: "Connections closed, whatever the reason.",
        value: |l| l.closed,
    },
    Family {
        name: "netloom_read_bytes_total",
        kind: Kind::Counter,
        help: "Bytes read from the sockets (ciphertext for TLS).",
        value: |l| l.bytes_read,
    },
    Family {
        name: "netloom_written_bytes_total",
        kind: Kind::Counter,
        help: "Bytes the kernel took for sending (ciphertext for TLS).",
        value: |l| l.bytes_written,
    },
    Family {
        name: "netloom_tls_plaintext_read_bytes_total",
        kind: Kind::Counter,
        help: "Plaintext decrypted for the handlers of TLS connections.",
        value: |l| l.tls_plaintext_read,
    },
    Family {
        name: "netloom_tls_plaintext_written_bytes_total",
        kind: Kind::Counter,
        help: "Plaintext the handlers of TLS connections wrote.",
        value: |l| l.tls_plaintext_written,
    },
    Family {
        name: "netloom_outbound_queued_bytes",
        kind: Kind::Gauge,
        help: "Bytes written and not yet taken by the kernel.",
        value: |l| l.outbound_queued_bytes,
    },
    Family {
        name: "netloom_backpressure_paused_connections",
        kind: Kind::Gauge,
        help: "Connections not read because their outbound bytes passed the high-water mark.",
        value: |l| l.backpressure_paused,
    },
    Family {
        name: "netloom_inbox_depth",
        kind: Kind::Gauge,
        help: "Messages waiting in the loop's inbox.",
        value: |l| l.inbox_depth,
    },
];

impl Stats {
    /// Writes the counters in the Prometheus text format (0.0.4), as a
    /// `GET /metrics` answer carries them (`Content-Type: text/plain;
    /// version=0.0.4`): per loop, labelled `loop="N"`; failures as
    /// `netloom_errors_total{loop="N",kind="…"}` (kinds `accept`, `io`,
    /// `connect`, `protocol`, `timeout`, `tls`, `panic`); busy time as
    /// `netloom_busy_seconds_total`.
    ///
    /// # Errors
    /// What `out` returns.
    ///
    /// ```
    /// # struct Quiet;
    /// # impl netloom::Handler for Quiet {
    /// #     type Context = ();
    /// #     fn on_traffic(&self, _: &mut netloom::Conn<'_, ()>) -> netloom::Action { netloom::Action::None }
    /// # }
    /// let engine = netloom::Engine::builder()
    ///     .bind("tcp://127.0.0.1:0")
    ///     .options(netloom::Options::default().loops(1))
    ///     .start(Quiet)?;
    /// let mut text = String::new();
    /// engine.stats().write_prometheus(&mut text)?;
    /// assert!(text.contains("netloom_accepted_connections_total{loop=\"0\"} 0\n"));
    /// engine.stop();
    /// engine.wait()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_prometheus(&self, out: &mut impl Write) -> fmt::Result {
        for family in &FAMILIES {
            let kind = match family.kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
            };
            write_header(out, family.name, family.help, kind)?;
            for (i, l) in self.loops.iter().enumerate() {
                writeln!(out, "{}{{loop=\"{i}\"}} {}", family.name, (family.value)(l))?;
            }
        }
        let name = "netloom_errors_total";
        write_header(
            out,
            name,
            "Failed accepts and connections closed with an error, by kind.",
            "counter",
        )?;
        for (i, l) in self.loops.iter().enumerate() {
            let counts = l.errors.to_array();
            for (kind, label) in ErrorKind::LABELS {
                let n = counts[kind as usize];
                writeln!(out, "{name}{{loop=\"{i}\",kind=\"{label}\"}} {n}")?;
            }
        }
        let name = "netloom_busy_seconds_total";
        write_header(
            out,
            name,
            "Time the loop spent working, not waiting for events.",
            "counter",
        )?;
        for (i, l) in self.loops.iter().enumerate() {
            writeln!(out, "{name}{{loop=\"{i}\"}} {}", l.busy.as_secs_f64())?;
        }
        Ok(())
    }
}

fn write_header(out: &mut impl Write, name: &str, help: &str, kind: &str) -> fmt::Result {
    writeln!(out, "# HELP {name} {help}")?;
    writeln!(out, "# TYPE {name} {kind}")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::ErrorCounts;
    use super::*;

    #[test]
    fn exposition_of_two_loops() {
        let first = LoopStats {
            open_connections: 3,
            accepted: 10,
            dialed: 1,
            closed: 8,
            bytes_read: 4096,
            bytes_written: 8192,
            tls_plaintext_read: 3000,
            tls_plaintext_written: 6000,
            outbound_queued_bytes: 512,
            backpressure_paused: 1,
            inbox_depth: 2,
            errors: ErrorCounts {
                accept: 1,
                io: 2,
                connect: 3,
                protocol: 4,
                timeout: 5,
                tls: 6,
                panic: 7,
            },
            busy: Duration::from_millis(1500),
        };
        let stats = Stats::new(vec![first, LoopStats::default()]);
        let mut text = String::new();
        stats.write_prometheus(&mut text).unwrap();
        let expected = r#"# HELP netloom_open_connections Connections the loop serves now.
# TYPE netloom_open_connections gauge
netloom_open_connections{loop="0"} 3
netloom_open_connections{loop="1"} 0
# HELP netloom_accepted_connections_total Connections accepted from a listener and registered on the loop.
# TYPE netloom_accepted_connections_total counter
netloom_accepted_connections_total{loop="0"} 10
netloom_accepted_connections_total{loop="1"} 0
# HELP netloom_dialed_connections_total Outbound connections started on the loop.
# TYPE netloom_dialed_connections_total counter
netloom_dialed_connections_total{loop="0"} 1
netloom_dialed_connections_total{loop="1"} 0
# HELP netloom_closed_connections_total Connections closed, whatever the reason.
# TYPE netloom_closed_connections_total counter
netloom_closed_connections_total{loop="0"} 8
netloom_closed_connections_total{loop="1"} 0
# HELP netloom_read_bytes_total Bytes read from the sockets (ciphertext for TLS).
# TYPE netloom_read_bytes_total counter
netloom_read_bytes_total{loop="0"} 4096
netloom_read_bytes_total{loop="1"} 0
# HELP netloom_written_bytes_total Bytes the kernel took for sending (ciphertext for TLS).
# TYPE netloom_written_bytes_total counter
netloom_written_bytes_total{loop="0"} 8192
netloom_written_bytes_total{loop="1"} 0
# HELP netloom_tls_plaintext_read_bytes_total Plaintext decrypted for the handlers of TLS connections.
# TYPE netloom_tls_plaintext_read_bytes_total counter
netloom_tls_plaintext_read_bytes_total{loop="0"} 3000
netloom_tls_plaintext_read_bytes_total{loop="1"} 0
# HELP netloom_tls_plaintext_written_bytes_total Plaintext the handlers of TLS connections wrote.
# TYPE netloom_tls_plaintext_written_bytes_total counter
netloom_tls_plaintext_written_bytes_total{loop="0"} 6000
netloom_tls_plaintext_written_bytes_total{loop="1"} 0
# HELP netloom_outbound_queued_bytes Bytes written and not yet taken by the kernel.
# TYPE netloom_outbound_queued_bytes gauge
netloom_outbound_queued_bytes{loop="0"} 512
netloom_outbound_queued_bytes{loop="1"} 0
# HELP netloom_backpressure_paused_connections Connections not read because their outbound bytes passed the high-water mark.
# TYPE netloom_backpressure_paused_connections gauge
netloom_backpressure_paused_connections{loop="0"} 1
netloom_backpressure_paused_connections{loop="1"} 0
# HELP netloom_inbox_depth Messages waiting in the loop's inbox.
# TYPE netloom_inbox_depth gauge
netloom_inbox_depth{loop="0"} 2
netloom_inbox_depth{loop="1"} 0
# HELP netloom_errors_total Failed accepts and connections closed with an error, by kind.
# TYPE netloom_errors_total counter
netloom_errors_total{loop="0",kind="accept"} 1
netloom_errors_total{loop="0",kind="io"} 2
netloom_errors_total{loop="0",kind="connect"} 3
netloom_errors_total{loop="0",kind="protocol"} 4
netloom_errors_total{loop="0",kind="timeout"} 5
netloom_errors_total{loop="0",kind="tls"} 6
netloom_errors_total{loop="0",kind="panic"} 7
netloom_errors_total{loop="1",kind="accept"} 0
netloom_errors_total{loop="1",kind="io"} 0
netloom_errors_total{loop="1",kind="connect"} 0
netloom_errors_total{loop="1",kind="protocol"} 0
netloom_errors_total{loop="1",kind="timeout"} 0
netloom_errors_total{loop="1",kind="tls"} 0
netloom_errors_total{loop="1",kind="panic"} 0
# HELP netloom_busy_seconds_total Time the loop spent working, not waiting for events.
# TYPE netloom_busy_seconds_total counter
netloom_busy_seconds_total{loop="0"} 1.5
netloom_busy_seconds_total{loop="1"} 0
"#;
        assert_eq!(text, expected);
    }
}
