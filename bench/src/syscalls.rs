//! Counting the system calls a process (all its threads) makes over a window.
//!
//! With `perf`: `perf stat -e raw_syscalls:sys_enter -p PID` is attached
//! beforehand with its counter off (`--delay -1`) and switched on and off
//! through a control FIFO, so the count covers exactly the window and
//! attaching costs the window nothing. When perf is missing or refused,
//! `strace -c -f -p PID` is attached at the start of the window and
//! interrupted at its end: it stops the process at every system call, so the
//! process runs far slower and batches differently; its figure is rough.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long perf or strace may take to start or to answer.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// The tool that counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    /// `perf stat` on the `raw_syscalls:sys_enter` tracepoint.
    Perf,
    /// `strace -c -f` (a fallback: slows the process down).
    Strace,
}

impl Tool {
    /// The tool's name, as recorded with the count.
    pub fn name(self) -> &'static str {
        match self {
            Tool::Perf => "perf",
            Tool::Strace => "strace",
        }
    }
}

/// perf, attached with its counter off, and the two FIFOs that drive it.
struct Perf {
    child: Child,
    control: File,
    acks: File,
}

/// A counter of one process's system calls: [`Counter::prepare`] before the
/// window, [`Counter::start`] and [`Counter::stop`] at its edges.
///
/// ```
/// use netloom_bench::syscalls::{Counter, Tool};
///
/// let mut process = std::process::Command::new("sleep").arg("5").spawn()?;
/// let mut counter = Counter::prepare(process.id(), Tool::Perf)?;
/// counter.start()?;
/// std::thread::sleep(std::time::Duration::from_millis(200));
/// let count = counter.stop()?;
/// assert!(count.calls < 10, "a sleeping process calls nothing: {count:?}");
/// process.kill()?;
/// process.wait()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Counter {
    pid: u32,
    dir: PathBuf,
    perf: Option<Perf>,
    /// Why perf is not used, when it is not.
    perf_refused: Option<String>,
    strace: Option<Child>,
}

/// A process's system calls over the window.
#[derive(Debug)]
pub struct Count {
    pub calls: u64,
    pub tool: Tool,
    /// Why perf was not used, when strace counted.
    pub note: Option<String>,
}

/// Makes a FIFO at `path`.
fn mkfifo(path: &Path) -> io::Result<()> {
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::other("a NUL byte in the FIFO's path"))?;
    // SAFETY: `c_path` is a NUL-terminated string that outlives the call;
    // mkfifo only reads it.
    if unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl Counter {
    /// Gets ready to count `pid`'s system calls. With `Tool::Perf`,
    /// attaches perf with its counter off or, when perf cannot count,
    /// remembers why; strace (`Tool::Strace`, or perf refused) is attached by
    /// [`Counter::start`].
    pub fn prepare(pid: u32, tool: Tool) -> io::Result<Counter> {
        let dir = std::env::temp_dir().join(format!(
            "netloom-bench-syscalls-{}-{pid}",
            std::process::id()
        ));
        fs::create_dir_all(&dir)?;
        let mut counter = Counter {
            pid,
            dir,
            perf: None,
            perf_refused: None,
            strace: None,
        };
        if tool == Tool::Perf {
            match counter.attach_perf() {
                Ok(perf) => counter.perf = Some(perf),
                Err(e) => counter.perf_refused = Some(format!("perf: {e}")),
            }
        }
        Ok(counter)
    }

    /// The tool that will count.
    pub fn tool(&self) -> Tool {
        if self.perf.is_some() {
            Tool::Perf
        } else {
            Tool::Strace
        }
    }

    fn attach_perf(&self) -> io::Result<Perf> {
        let (control_path, ack_path) = (self.dir.join("control"), self.dir.join("ack"));
        mkfifo(&control_path)?;
        mkfifo(&ack_path)?;
        // Both ends opened read-write: neither open waits for perf, and
        // perf's own opens (control read-write, ack write-only) find a peer.
        let control = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&control_path)?;
        let acks = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&ack_path)?;
        let child = Command::new("perf")
            .args([
                "stat",
                "-e",
                "raw_syscalls:sys_enter",
                "-x,",
                "--delay",
                "-1",
            ])
            .arg("--control")
            .arg(format!(
                "fifo:{},{}",
                control_path.display(),
                ack_path.display()
            ))
            .arg("-o")
            .arg(self.dir.join("perf.out"))
            .arg("-p")
            .arg(self.pid.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(self.dir.join("perf.err"))?)
            .spawn()?;
        let mut perf = Perf {
            child,
            control,
            acks,
        };
        // Off, and off again: the answer shows that perf has attached and
        // listens (a refusal makes it exit instead).
        perf.command("disable", &self.dir).inspect_err(|_| {
            let _ = perf.child.kill();
            let _ = perf.child.wait();
        })?;
        Ok(perf)
    }

    /// Starts counting.
    pub fn start(&mut self) -> io::Result<()> {
        if let Some(perf) = self.perf.as_mut() {
            return perf.command("enable", &self.dir);
        }
        let mut child = Command::new("strace")
            .args(["-c", "-f", "-o"])
            .arg(self.dir.join("strace.out"))
            .arg("-p")
            .arg(self.pid.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| io::Error::other(format!("strace: {e}")))?;
        // strace says "Process N attached" once it has stopped the process.
        let mut said = Vec::new();
        let mut err = child.stderr.take().expect("piped stderr");
        let deadline = Instant::now() + ANSWER_WITHIN;
        let mut byte = [0u8; 1];
        while !String::from_utf8_lossy(&said).contains("attached") {
            if Instant::now() > deadline || err.read(&mut byte)? == 0 {
                let _ = child.kill();
                let _ = child.wait();
                return Err(io::Error::other(format!(
                    "strace did not attach: {}",
                    String::from_utf8_lossy(&said).trim()
                )));
            }
            said.push(byte[0]);
        }
        // Later messages (one per thread) go nowhere.
        thread::spawn(move || io::copy(&mut err, &mut io::sink()));
        self.strace = Some(child);
        Ok(())
    }

    /// Stops counting and reads the count.
    pub fn stop(&mut self) -> io::Result<Count> {
        if let Some(mut perf) = self.perf.take() {
            perf.command("disable", &self.dir)?;
            let out = finish(&mut perf.child, &self.dir.join("perf.out"))?;
            let calls = parse_perf(&out).ok_or_else(|| {
                io::Error::other(format!("no count in perf's output: {}", out.trim()))
            })?;
            return Ok(Count {
                calls,
                tool: Tool::Perf,
                note: None,
            });
        }
        let mut strace = self
            .strace
            .take()
            .ok_or_else(|| io::Error::other("stop without start"))?;
        let out = finish(&mut strace, &self.dir.join("strace.out"))?;
        let calls = parse_strace(&out).ok_or_else(|| {
            io::Error::other(format!("no total in strace's output: {}", out.trim()))
        })?;
        Ok(Count {
            calls,
            tool: Tool::Strace,
            note: self.perf_refused.clone(),
        })
    }
}

impl Perf {
    /// Sends `command` (`enable`, `disable`) and waits for perf's `ack\n`
    /// (perf writes it with its C string's NUL: `ack\n\0`).
    fn command(&mut self, command: &str, dir: &Path) -> io::Result<()> {
        self.control.write_all(format!("{command}\n").as_bytes())?;
        let deadline = Instant::now() + ANSWER_WITHIN;
        let mut answer = Vec::new();
        let mut chunk = [0u8; 16];
        while !answer.windows(4).any(|w| w == b"ack\n") {
            match self.acks.read(&mut chunk) {
                Ok(n) => answer.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if let Some(status) = self.child.try_wait()? {
                        let why = fs::read_to_string(dir.join("perf.err")).unwrap_or_default();
                        return Err(io::Error::other(format!(
                            "exited ({status}): {}",
                            why.trim()
                        )));
                    }
                    if Instant::now() > deadline {
                        return Err(io::Error::other(format!("no answer to {command}")));
                    }
                    thread::sleep(Duration::from_micros(200));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Interrupts `child` (perf and strace write their figures on SIGINT),
/// waits for it and returns what it wrote to `out`.
fn finish(child: &mut Child, out: &Path) -> io::Result<String> {
    // SAFETY: signals our own child by its PID; it has not been reaped yet
    // (we still own the `Child`), so the PID cannot be reused.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let deadline = Instant::now() + ANSWER_WITHIN;
    while child.try_wait()?.is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::other("did not stop on SIGINT"));
        }
        thread::sleep(Duration::from_millis(5));
    }
    fs::read_to_string(out)
}

/// The count in `perf stat -x,` output: the first field of the event's line
/// (`<not counted>`: the process made no call).
fn parse_perf(out: &str) -> Option<u64> {
    let line = out
        .lines()
        .find(|l| l.contains(",raw_syscalls:sys_enter,"))?;
    let field = line.split(',').next()?;
    if field == "<not counted>" {
        return Some(0);
    }
    field.trim().parse().ok()
}

/// The calls column of the `total` line of `strace -c` output.
fn parse_strace(out: &str) -> Option<u64> {
    let line = out.lines().find(|l| l.trim_end().ends_with(" total"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// `, syscalls/msg 3.02 (perf)` for a load generator's record that holds a
/// count (`, syscalls: ERROR` for one whose count failed), else nothing.
pub fn summary(record: &serde_json::Value) -> String {
    if let Some(e) = record["syscall_count_error"].as_str() {
        return format!(", syscalls: {e}");
    }
    match record["server_syscalls_per_op"].as_f64() {
        Some(per_op) => format!(
            ", syscalls/msg {per_op:.2} ({})",
            record["syscall_counter"].as_str().unwrap_or("?")
        ),
        None => String::new(),
    }
}

impl Drop for Counter {
    fn drop(&mut self) {
        let children = self
            .perf
            .as_mut()
            .map(|p| &mut p.child)
            .into_iter()
            .chain(self.strace.as_mut());
        for child in children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_perf_and_strace_output() {
        let perf = "# started on Thu Dec  3 18:36:02 2026\n\n\
                    50728,,raw_syscalls:sys_enter,457134330,100.00,,Events disabled\n";
        assert_eq!(parse_perf(perf), Some(50728));
        assert_eq!(
            parse_perf("<not counted>,,raw_syscalls:sys_enter,0,100.00,,\n"),
            Some(0)
        );
        assert_eq!(parse_perf("Events disabled\n"), None);
        let strace = "% time     seconds  usecs/call     calls    errors syscall\n\
                      ------ ----------- ----------- --------- --------- ----------------\n \
                      60.00    0.000600           3       200        10 read\n \
                      40.00    0.000400           2       200           write\n\
                      ------ ----------- ----------- --------- --------- ----------------\n\
                      100.00    0.001000           2       400        10 total\n";
        assert_eq!(parse_strace(strace), Some(400));
        assert_eq!(parse_strace("nothing\n"), None);
    }

    /// Counts a child that makes a known number of calls inside the window
    /// (and as many outside it): `dd` copying 20,000 one-byte blocks makes
    /// one read and one write per block. Each tool must be installed (perf
    /// from `linux-perf`, strace from `strace`) and allowed to attach.
    fn counts_exactly_the_window(tool: Tool) {
        let mut feed = Command::new("sh")
            .args([
                "-c",
                "read go; dd if=/dev/zero of=/dev/null bs=1 count=20000 2>/dev/null; \
                 read stop; dd if=/dev/zero of=/dev/null bs=1 count=20000 2>/dev/null; read end",
            ])
            .stdin(Stdio::piped())
            .spawn()
            .expect("sh");
        let mut input = feed.stdin.take().expect("stdin");
        let mut counter = Counter::prepare(feed.id(), tool).expect("prepare");
        assert_eq!(counter.tool(), tool, "{:?}", counter.perf_refused);
        counter.start().expect("start");
        input.write_all(b"go\n").expect("write");
        thread::sleep(Duration::from_millis(1500));
        let count = counter.stop().expect("stop");
        input.write_all(b"stop\nend\n").expect("write");
        drop(input);
        feed.wait().expect("wait");
        assert_eq!(count.tool, tool);
        // 40,000 by dd, plus the shell's read, fork and wait, and dd's start.
        assert!(
            (40_000..41_000).contains(&count.calls),
            "{count:?} (is dd done within 1.5 s?)"
        );
    }

    #[test]
    fn perf_counts_exactly_the_window() {
        counts_exactly_the_window(Tool::Perf);
    }

    #[test]
    fn strace_counts_exactly_the_window() {
        counts_exactly_the_window(Tool::Strace);
    }
}
