//! Linux backends: epoll and io_uring selectors, eventfd, signalfd and the
//! Linux-only socket syscalls.

pub(crate) mod buf_ring;
pub(crate) mod epoll;
pub(crate) mod eventfd;
pub(crate) mod selector;
pub(crate) mod signal;
pub(crate) mod socket;
pub(crate) mod uring;

pub(crate) use super::unix::{check, check_size};
