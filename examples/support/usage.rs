//! How every example answers `--help` and a bad flag. Included with `#[path]`.

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
