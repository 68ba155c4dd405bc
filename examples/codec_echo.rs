// cargo run --release --example codec_echo -- --addr tcp://127.0.0.1:9000 --codec length-field
//! A frame echo server: decodes each frame with the chosen codec and sends
//! it back re-encoded with the same codec.
//!
//! Codecs and their flags (defaults in brackets):
//!
//! | `--codec` | framing | flags |
//! |-----------|---------|-------|
//! | `line` | `\n` or `\r\n`; replies end in `\n` | `--max-length` [8192] |
//! | `delimiter` | any of the `--delimiter`s, shortest frame wins; replies end in the first | `--delimiter S` (repeatable) [`;`], `--max-length` [8192] |
//! | `fixed` | frames of `--frame-length` bytes | `--frame-length N` [16] |
//! | `length-field` | a length field counting the payload only; replies framed the same way | `--length-field-size 1\|2\|3\|4\|8` [4], `--byte-order be\|le` [be], `--max-length` (payload bytes) [1048576] |
//!
//! A frame over the maximum is logged and closes that connection only, as
//! soon as the maximum is crossed; the others keep being served. A length
//! field announcing 4 GiB closes at once; so does a line or delimited frame
//! that grows past `--max-length` without its delimiter: the codecs are built
//! with `fail_fast(true)`, rather than netty's default of discarding the
//! over-long frame until its delimiter comes (which a client that never sends
//! one would make last for ever).
//!
//! Try it:
//!
//! ```text
//! cargo run --release --example codec_echo -- --codec line &
//! printf 'hello\r\nworld\n' | nc -q1 127.0.0.1 9000     # hello\nworld\n
//! ```

use netloom::codec::{
    ByteOrder, Codec, DelimiterCodec, FixedLengthCodec, LengthFieldCodec, LineCodec,
};
use netloom::{Action, Engine, Error, FrameConn, FrameHandler, Framed, Options};
#[path = "support/serve.rs"]
mod serve;
use serve::serve;
#[path = "support/usage.rs"]
mod usage;
use usage::{exit_with_usage, parse_backend, BACKEND_USAGE};

/// The codec settings from the command line; every connection gets a codec
/// built from them.
struct Settings {
    codec: String,
    max_length: Option<usize>,
    delimiters: Vec<String>,
    frame_length: usize,
    length_field_size: usize,
    byte_order: ByteOrder,
}

impl Settings {
    /// Builds one codec, or explains why the flags do not make one.
    fn build(&self) -> Result<Box<dyn Codec + Send>, String> {
        let codec: Box<dyn Codec + Send> = match self.codec.as_str() {
            "line" => Box::new(
                LineCodec::builder()
                    .max_length(self.max_length.unwrap_or(8192))
                    .fail_fast(true)
                    .build(),
            ),
            "delimiter" => {
                let mut builder = DelimiterCodec::builder()
                    .max_length(self.max_length.unwrap_or(8192))
                    .fail_fast(true);
                let defaults = [";".to_string()];
                let delimiters = if self.delimiters.is_empty() {
                    &defaults[..]
                } else {
                    &self.delimiters[..]
                };
                for delimiter in delimiters {
                    builder = builder.delimiter(delimiter);
                }
                Box::new(builder.build().map_err(|e| e.to_string())?)
            }
            "fixed" => {
                Box::new(FixedLengthCodec::new(self.frame_length).map_err(|e| e.to_string())?)
            }
            "length-field" => {
                // The reply framing (the default prepender) mirrors the decoder's.
                let size = self.length_field_size;
                let payload_max = self.max_length.unwrap_or(1 << 20);
                let codec = LengthFieldCodec::builder()
                    .length_field_size(size)
                    .byte_order(self.byte_order)
                    .initial_bytes_to_strip(size)
                    .max_frame_length(payload_max.saturating_add(size))
                    .build()
                    .map_err(|e| e.to_string())?;
                Box::new(codec)
            }
            other => return Err(format!("unknown codec {other}")),
        };
        Ok(codec)
    }
}

struct FrameEcho {
    settings: Settings,
}

impl FrameHandler for FrameEcho {
    type Codec = Box<dyn Codec + Send>;
    type Context = ();

    fn new_codec(&self) -> Self::Codec {
        self.settings
            .build()
            .expect("the settings were validated at start-up")
    }

    fn on_frame(&self, conn: &mut FrameConn<'_, Self>, frame: &[u8]) -> Action {
        match conn.send_frame(frame) {
            Ok(()) => Action::None,
            Err(e) => {
                eprintln!("codec_echo: {}: cannot send: {e}", conn.peer_addr());
                Action::Close
            }
        }
    }

    fn on_close(&self, conn: &mut FrameConn<'_, Self>, err: Option<&Error>) -> Action {
        if let Some(e) = err {
            eprintln!("codec_echo: {} closed: {e}", conn.peer_addr());
        }
        Action::None
    }
}

fn main() {
    let mut addrs = Vec::new();
    let mut options = Options::default().stop_on_signals(true);
    let mut settings = Settings {
        codec: "line".to_string(),
        max_length: None,
        delimiters: Vec::new(),
        frame_length: 16,
        length_field_size: 4,
        byte_order: ByteOrder::BigEndian,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
        };
        let number = |v: String, flag: &str| -> usize {
            v.parse()
                .unwrap_or_else(|_| usage(&format!("{flag} takes a number")))
        };
        match flag.as_str() {
            "--addr" => addrs.push(value()),
            "--loops" => options = options.loops(number(value(), "--loops")),
            "--codec" => settings.codec = value(),
            "--max-length" => settings.max_length = Some(number(value(), "--max-length")),
            "--delimiter" => settings.delimiters.push(value()),
            "--frame-length" => settings.frame_length = number(value(), "--frame-length"),
            "--length-field-size" => {
                settings.length_field_size = number(value(), "--length-field-size")
            }
            "--byte-order" => {
                settings.byte_order = match value().as_str() {
                    "be" => ByteOrder::BigEndian,
                    "le" => ByteOrder::LittleEndian,
                    _ => usage("--byte-order takes be or le"),
                }
            }
            "--backend" => options = options.backend(parse_backend(&value(), |p| usage(p))),
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown flag {other}")),
        }
    }
    if let Err(e) = settings.build() {
        usage(&e);
    }
    if addrs.is_empty() {
        addrs.push("tcp://127.0.0.1:9000".to_string());
    }
    let codec = settings.codec.clone();
    let mut builder = Engine::builder().options(options);
    for addr in &addrs {
        builder = builder.bind(addr);
    }
    serve(
        "codec_echo",
        builder,
        Framed(FrameEcho { settings }),
        None,
        |_, addr| format!("{codec} frames on {addr}"),
        |_| {},
    );
}

fn usage(problem: &str) -> ! {
    exit_with_usage(
        "codec_echo",
        &format!(
            "usage: codec_echo [--addr tcp://HOST:PORT]... [--loops N] \
             [--codec line|delimiter|fixed|length-field] [--max-length N] [--delimiter S]... \
             [--frame-length N] [--length-field-size 1|2|3|4|8] [--byte-order be|le] {BACKEND_USAGE}"
        ),
        problem,
    )
}
