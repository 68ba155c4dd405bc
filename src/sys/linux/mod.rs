//! Linux backend: epoll, eventfd, signalfd and the Linux-only socket syscalls.

pub(crate) mod epoll;
pub(crate) mod eventfd;
pub(crate) mod signal;
pub(crate) mod socket;

pub(crate) use super::unix::{check, check_size};
use super::Feature;

/// Linux has every kernel feature netloom's options ask for.
pub(crate) const fn supports(feature: Feature) -> bool {
    match feature {
        Feature::CpuPinning
        | Feature::BindDevice
        | Feature::DeferAccept
        | Feature::AbstractUnixSockets
        | Feature::BalancedReuseport => true,
    }
}
