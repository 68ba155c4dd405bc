//! What the callback examples share once their flags are parsed: start the
//! engine, print one line per address it listens on (the address stands
//! alone as a word: tests and scripts parse it), wait until it stops
//! (Ctrl-C or SIGTERM with `stop_on_signals`, or a drain after a handoff),
//! and exit with status 1 on an error. Included with `#[path]`.

use std::path::Path;

use netloom::{Addr, Engine, EngineBuilder, Handler};

/// Runs `handler` on `builder` until the engine stops; `banner` words the
/// line printed for each local address; `started` runs once they are
/// printed (the `--metrics-addr` endpoint starts there).
///
/// With `handoff` (`--handoff PATH`) it restarts without downtime: the
/// engine first takes over the sockets a running one offers at that path
/// (binding them itself when none does), then offers its own there, to the
/// next process started the same way, and drains once that one serves.
pub fn serve<H: Handler>(
    name: &str,
    builder: EngineBuilder,
    handler: H,
    handoff: Option<&Path>,
    banner: impl Fn(&Engine, &Addr) -> String,
    started: impl FnOnce(&Engine),
) {
    let fail = |e: netloom::Error| -> ! {
        eprintln!("{name}: {e}");
        std::process::exit(1);
    };
    let builder = match handoff {
        Some(path) => builder.inherit_from(path),
        None => builder,
    };
    let engine = builder.start(handler).unwrap_or_else(|e| fail(e));
    if let Some(path) = handoff {
        engine.serve_handoff(path).unwrap_or_else(|e| fail(e));
    }
    for addr in engine.local_addrs() {
        println!("{name}: {}", banner(&engine, addr));
    }
    started(&engine);
    if let Err(e) = engine.wait() {
        fail(e);
    }
    if engine.is_draining() {
        println!("{name}: drained, exiting");
    }
}
