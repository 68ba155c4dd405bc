//! How every example answers `--help` and a bad flag, and the flag they all
//! take: `--backend epoll|io-uring|auto` (`netloom::Backend`; `auto`, the
//! default, lets `NETLOOM_BACKEND` choose). Included with `#[path]`.

/// The usage text of `--backend`.
pub const BACKEND_USAGE: &str = "[--backend epoll|io-uring|auto]";

/// `--backend`'s value; a bad one goes to `usage`.
pub fn parse_backend(
    value: &str,
    usage: impl FnOnce(&str) -> netloom::Backend,
) -> netloom::Backend {
    value
        .parse()
        .unwrap_or_else(|e: netloom::Error| usage(&e.to_string()))
}

/// Prints the usage line `text` and exits. Asked for (`problem` empty, from
/// `-h` or `--help`): on stdout, status 0. After a bad flag: `name: problem`
/// then the usage on stderr, status 2.
pub fn exit_with_usage(name: &str, text: &str, problem: &str) -> ! {
    if problem.is_empty() {
        println!("{text}");
        std::process::exit(0);
    }
    eprintln!("{name}: {problem}");
    eprintln!("{text}");
    std::process::exit(2);
}
