//! `--name value` command-line flags, enough for the suite's binaries.

use std::collections::HashMap;
use std::str::FromStr;

/// Parsed `--name value` pairs (also `--name=value`).
pub struct Flags {
    program: &'static str,
    usage: &'static str,
    values: HashMap<String, String>,
}

impl Flags {
    /// Parses the process arguments; exits with the usage text on `-h`, a
    /// flag without a value, or a name not listed in `usage`.
    pub fn parse(program: &'static str, usage: &'static str) -> Flags {
        let mut values = HashMap::new();
        let mut args = std::env::args().skip(1);
        let fail = |msg: String| -> ! {
            eprintln!("{program}: {msg}\nusage: {program} {usage}");
            std::process::exit(2)
        };
        while let Some(arg) = args.next() {
            if arg == "-h" || arg == "--help" {
                fail("help".into());
            }
            let Some(name) = arg.strip_prefix("--") else {
                fail(format!("unexpected argument {arg}"));
            };
            let (name, value) = match name.split_once('=') {
                Some((n, v)) => (n.to_string(), v.to_string()),
                None => match args.next() {
                    Some(v) => (name.to_string(), v),
                    None => fail(format!("--{name} needs a value")),
                },
            };
            if !usage.contains(&format!("--{name} ")) && !usage.contains(&format!("--{name}]")) {
                fail(format!("unknown flag --{name}"));
            }
            values.insert(name, value);
        }
        Flags {
            program,
            usage,
            values,
        }
    }

    /// The value of `--name`, parsed, or `default` when absent.
    pub fn get<T: FromStr>(&self, name: &str, default: T) -> T {
        match self.values.get(name) {
            None => default,
            Some(v) => v.parse().unwrap_or_else(|_| {
                eprintln!(
                    "{}: bad value {v:?} for --{name}\nusage: {} {}",
                    self.program, self.program, self.usage
                );
                std::process::exit(2)
            }),
        }
    }

    /// The value of `--name` as text, or `default`.
    pub fn text(&self, name: &str, default: &str) -> String {
        self.values
            .get(name)
            .cloned()
            .unwrap_or_else(|| default.to_string())
    }
}
