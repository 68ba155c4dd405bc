//! Readers of `/proc`: a process's CPU time and memory, a core's busy time.

use std::fs;
use std::io;

/// Clock ticks per second of the times in `/proc/*/stat` (`USER_HZ`).
pub fn ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        hz as f64
    } else {
        100.0
    }
}

/// User and system CPU seconds a process (all its threads) has used so far.
pub fn process_cpu(pid: u32) -> io::Result<(f64, f64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name may hold spaces and parentheses: fields are counted
    // from the last ')'. After it come state (field 3) .. utime (14), stime (15).
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| io::Error::other("bad /proc/PID/stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| -> io::Result<f64> {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .ok_or_else(|| io::Error::other("bad /proc/PID/stat"))
    };
    let hz = ticks_per_second();
    Ok((field(11)? / hz, field(12)? / hz))
}

/// A `kB` line of `/proc/PID/status`, e.g. `VmHWM` (peak RSS) or `VmRSS`.
pub fn status_kib(pid: u32, key: &str) -> io::Result<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| io::Error::other(format!("no {key} in /proc/{pid}/status")))
}

/// Jiffies a core spent busy (user, nice, system, irq, softirq), in total, and
/// stolen by the hypervisor, from `/proc/stat`.
#[derive(Clone, Copy, Default, Debug)]
pub struct CoreTicks {
    /// Busy ticks (includes the kernel's softirq network work on that core).
    pub busy: u64,
    /// All ticks.
    pub total: u64,
    /// Ticks the hypervisor gave to someone else.
    pub steal: u64,
}

/// The tick counters of `cpu{core}`.
pub fn core_ticks(core: usize) -> io::Result<CoreTicks> {
    let stat = fs::read_to_string("/proc/stat")?;
    let name = format!("cpu{core}");
    let line = stat
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name.as_str()))
        .ok_or_else(|| io::Error::other(format!("no {name} in /proc/stat")))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let get = |i: usize| v.get(i).copied().unwrap_or(0);
    // user nice system idle iowait irq softirq steal
    Ok(CoreTicks {
        busy: get(0) + get(1) + get(2) + get(5) + get(6),
        total: v.iter().sum(),
        steal: get(7),
    })
}

impl CoreTicks {
    /// Busy and steal shares (percent) and busy seconds between two readings.
    pub fn since(self, before: CoreTicks) -> (f64, f64, f64) {
        let total = self.total.saturating_sub(before.total).max(1) as f64;
        let busy = self.busy.saturating_sub(before.busy) as f64;
        let steal = self.steal.saturating_sub(before.steal) as f64;
        (
            busy * 100.0 / total,
            steal * 100.0 / total,
            busy / ticks_per_second(),
        )
    }
}
