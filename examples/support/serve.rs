//! What the callback examples share once their flags are parsed: start the
//! engine, print one line per address it listens on (the address stands
//! alone as a word: tests and scripts parse it), wait until it stops
//! (Ctrl-C or SIGTERM with `stop_on_signals`), and exit with status 1 on an
//! error. Included with `#[path]`.

use netloom::{Addr, Engine, EngineBuilder, Handler};

/// Runs `handler` on `builder` until the engine stops; `banner` words the
/// line printed for each local address; `started` runs once they are
/// printed (the `--metrics-addr` endpoint starts there).
pub fn serve<H: Handler>(
    name: &str,
    builder: EngineBuilder,
    handler: H,
    banner: impl Fn(&Engine, &Addr) -> String,
    started: impl FnOnce(&Engine),
) {
    let engine = builder.start(handler).unwrap_or_else(|e| {
        eprintln!("{name}: {e}");
        std::process::exit(1);
    });
    for addr in engine.local_addrs() {
        println!("{name}: {}", banner(&engine, addr));
    }
    started(&engine);
    if let Err(e) = engine.wait() {
        eprintln!("{name}: {e}");
        std::process::exit(1);
    }
}
