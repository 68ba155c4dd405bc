//! The reactor: what every front-end's loops are made of, above the
//! platform layer (`sys`) and below the two loop kinds (the callback
//! `event_loop` and the async `executor`): tokens and the per-loop slab of
//! descriptors (Go's `pollDesc` table), the timer heap, the cross-thread
//! inbox, the load balancer that assigns accepted connections, and the
//! state the loops of one engine share with their threads.

pub(crate) mod balancer;
pub(crate) mod group;
pub(crate) mod inbox;
pub(crate) mod timer;
pub(crate) mod token;
