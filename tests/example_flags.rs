//! Black-box tests of the examples' command lines: `--help` prints the usage
//! on stdout and exits with status 0 in every example; flags that an example
//! cannot honour are refused with status 2 instead of being half obeyed.

mod util;

use std::process::{Command, Output};

/// Runs example `name` with `args` until it exits (each case here exits
/// during flag parsing, before it binds anything).
fn run(name: &str, args: &[&str]) -> Output {
    Command::new(util::example_binary(name))
        .args(args)
        .output()
        .expect("example runs")
}

#[test]
fn help_prints_usage_and_exits_0_in_every_example() {
    let examples = [
        "codec_echo",
        "echo",
        "echo_async",
        "http",
        "http_async",
        "loadgen",
        "pool",
        "proxy",
        "redis",
        "tasks_in_callbacks",
    ];
    for name in examples {
        for flag in ["--help", "-h"] {
            let out = run(name, &[flag]);
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert_eq!(out.status.code(), Some(0), "{name} {flag}: {out:?}");
            assert!(
                stdout.starts_with(&format!("usage: {name} ")),
                "{name} {flag} printed {stdout:?}"
            );
        }
        let stdout = String::from_utf8_lossy(&run(name, &["--help"]).stdout).into_owned();
        assert!(
            stdout.contains("[--backend epoll|io-uring|auto]"),
            "{name} offers --backend: {stdout}"
        );
        // A backend that does not exist is refused before anything starts
        // (the proxy takes a non-backend value as its upstream's old flag,
        // which is no address either).
        let out = run(name, &["--backend", "select"]);
        assert_eq!(out.status.code(), Some(2), "{name}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let refusal = if name == "proxy" {
            "--upstream takes IP:PORT"
        } else {
            "expected epoll, io-uring or auto"
        };
        assert!(stderr.contains(refusal), "{name}: {stderr}");
        // A wrong flag is still an error, reported on stderr.
        let out = run(name, &["--no-such-flag"]);
        assert_eq!(out.status.code(), Some(2), "{name}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("unknown flag --no-such-flag"), "{stderr}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn stream_servers_refuse_udp() {
    for name in ["http", "redis"] {
        for url in ["udp://127.0.0.1:0", "udp4://127.0.0.1:0", "udp6://[::1]:0"] {
            let out = run(name, &["--addr", url]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{name} {url}: {stderr}");
            assert!(stderr.contains("is not served"), "{name} {url}: {stderr}");
        }
    }
}

#[test]
fn pool_refuses_zero_workers() {
    let out = run("pool", &["--workers", "0"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--workers must be at least 1"), "{stderr}");
}

#[test]
fn the_http_header_names_files_inside_the_repository() {
    let root = env!("CARGO_MANIFEST_DIR");
    let header = std::fs::read_to_string(format!("{root}/examples/http/main.rs")).unwrap();
    let scripts: Vec<&str> = header
        .lines()
        .filter_map(|line| line.split(" -s ").nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .collect();
    assert!(!scripts.is_empty(), "the header shows a wrk command");
    for script in scripts {
        assert!(
            !script.starts_with(".."),
            "{script} is outside the repository"
        );
        let path = std::path::Path::new(root).join(script);
        assert!(path.is_file(), "{} does not exist", path.display());
    }
}
