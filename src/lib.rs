//! netloom: Go's netpoller and gnet's multi-reactor engine, in Rust, on one shared epoll core.
pub mod codec;
