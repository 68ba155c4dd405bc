//! Choosing the loop that gets a newly accepted connection.

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::Addr;

/// How the acceptor spreads connections over the loops (ignored with
/// `Options::reuseport`, where the kernel spreads them).
///
/// ```
/// let options = netloom::Options::default().load_balancer(netloom::LoadBalancer::LeastConnections);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LoadBalancer {
    /// Each loop in turn.
    #[default]
    RoundRobin,
    /// The loop with the fewest open connections.
    LeastConnections,
    /// A hash of the peer's IP address: one client always lands on one loop.
    /// Unix domain clients are usually unnamed, so they all share one loop.
    SourceAddrHash,
}

impl LoadBalancer {
    /// Picks a loop index among `loads.len()` loops.
    pub(crate) fn pick(self, next: &mut usize, peer: &Addr, loads: &[AtomicUsize]) -> usize {
        let n = loads.len();
        match self {
            LoadBalancer::RoundRobin => {
                let i = *next % n;
                *next = next.wrapping_add(1);
                i
            }
            LoadBalancer::LeastConnections => (0..n)
                .min_by_key(|&i| loads[i].load(Ordering::Relaxed))
                .unwrap_or(0),
            LoadBalancer::SourceAddrHash => {
                // DefaultHasher::new() uses fixed keys: stable across calls.
                let mut h = std::collections::hash_map::DefaultHasher::new();
                match peer {
                    Addr::Inet(a) => a.ip().hash(&mut h),
                    Addr::Unix(name) => name.hash(&mut h),
                }
                (h.finish() % n as u64) as usize
            }
        }
    }
}

impl std::str::FromStr for LoadBalancer {
    type Err = crate::Error;

    /// `round-robin`, `least-conn` or `source-hash`.
    fn from_str(s: &str) -> crate::Result<Self> {
        match s {
            "round-robin" | "rr" => Ok(LoadBalancer::RoundRobin),
            "least-conn" | "least-connections" => Ok(LoadBalancer::LeastConnections),
            "source-hash" | "source-addr-hash" => Ok(LoadBalancer::SourceAddrHash),
            _ => Err(crate::Error::InvalidOption(format!(
                "load balancer `{s}` (expected round-robin, least-conn or source-hash)"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inet(s: &str) -> Addr {
        Addr::Inet(s.parse().unwrap())
    }

    #[test]
    fn each_policy_picks_as_documented() {
        let loads: Vec<AtomicUsize> = [5, 2, 7].into_iter().map(AtomicUsize::new).collect();
        let peer = inet("10.0.0.1:1234");
        let mut next = 0;
        let rr: Vec<_> = (0..4)
            .map(|_| LoadBalancer::RoundRobin.pick(&mut next, &peer, &loads))
            .collect();
        assert_eq!(rr, vec![0, 1, 2, 0]);
        assert_eq!(
            LoadBalancer::LeastConnections.pick(&mut next, &peer, &loads),
            1
        );
        let other_port = inet("10.0.0.1:999");
        let h = LoadBalancer::SourceAddrHash.pick(&mut next, &peer, &loads);
        assert_eq!(
            h,
            LoadBalancer::SourceAddrHash.pick(&mut next, &other_port, &loads)
        );
        let spread: std::collections::HashSet<_> = (0..64)
            .map(|i| {
                let p = inet(&format!("10.0.0.{i}:1"));
                LoadBalancer::SourceAddrHash.pick(&mut next, &p, &loads)
            })
            .collect();
        assert_eq!(spread.len(), 3, "many sources spread over every loop");
        assert!("bogus".parse::<LoadBalancer>().is_err());
        assert_eq!(
            "least-conn".parse::<LoadBalancer>().unwrap(),
            LoadBalancer::LeastConnections
        );
    }
}
