//! kqueue backend (macOS, FreeBSD): kqueue selector and `EVFILT_USER`
//! waker, `EVFILT_SIGNAL` stop signals, and the socket syscalls whose BSD
//! form differs from Linux's.

pub(crate) mod kqueue;
pub(crate) mod signal;
pub(crate) mod socket;

pub(crate) use super::unix::check;
use super::Feature;

/// Which kernel features netloom's options ask for this platform has.
pub(crate) const fn supports(feature: Feature) -> bool {
    match feature {
        // FreeBSD: cpuset_setaffinity, SO_REUSEPORT_LB. macOS has neither.
        Feature::CpuPinning | Feature::BalancedReuseport => cfg!(target_os = "freebsd"),
        // macOS: IP_BOUND_IF. FreeBSD has no per-socket interface binding.
        Feature::BindDevice => cfg!(target_os = "macos"),
        // FreeBSD's accept filters have no timeout; abstract names are Linux's.
        Feature::DeferAccept | Feature::AbstractUnixSockets => false,
    }
}
