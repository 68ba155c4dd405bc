//! One event loop: a thread that owns a poller, its connections and timers.
//!
//! Each turn: wait for readiness (the timeout is the nearest timer, or zero
//! when work is queued), handle every event, drain the inbox when the waker
//! fired, run connections woken with `wake()`, then fire due timers.

use std::io::{self, Read};
use std::net::Shutdown;
use std::os::fd::{AsRawFd, OwnedFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use socket2::Socket;

use crate::buffer::BufferPool;
use crate::conn::{
    Command, Conn, ConnEnv, ConnHandle, ConnRecord, ConnState, ConnTimer, Dial, DialReply,
    DrainWaiter, Effect, Incoming, Limits, OpsInFlight, Outbound, ReadMode, RecordMut,
    TimerVerdict, Writer,
};
use crate::datagram::DatagramRecord;
use crate::listen::{Listener, StreamOptions};
use crate::reactor::balancer::LoadBalancer;
use crate::reactor::group::LoopGroup;
use crate::reactor::inbox::{InboxReceiver, InboxSender, Lane};
use crate::reactor::timer::TimerHeap;
use crate::reactor::token::{Slab, Token};
use crate::rt::RuntimeShared;
use crate::rt::{Core, CoreSeed};
use crate::stats::{ErrorKind, LoopCounters};
use crate::sys::{socket, Events, Interest, Selector, Trigger};
use crate::unwind::panic_message;
use crate::{Action, Addr, Error, Options, Result};

mod completion;
mod datagram;
mod proxy;
#[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
mod tls;

/// Connections accepted per listener event before other events get a turn.
const ACCEPT_BATCH: usize = 64;
/// First and longest pause of a listener after `EMFILE` and the like.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Connections are edge-triggered: the kernel then does not re-poll every
/// reported socket on the next `epoll_wait`, which level triggering costs
/// per message. A read that fills the whole read buffer may have left bytes
/// behind, so that connection is read again next turn (`unread`); a shorter
/// read took everything, and later bytes raise a new edge. The peer's FIN
/// raises no later edge, so once it is reported the connection is read
/// again until the read returns 0.
const CONN_TRIGGER: Trigger = Trigger::Edge;
/// How often a draining loop checks whether the engine's connections are
/// gone (the loop that closes the last one sees it at once; this catches
/// the others).
const DRAIN_CHECK: Duration = Duration::from_millis(100);
/// Capacity of the free buffers a loop keeps for reuse.
const POOLED_BYTES: usize = 4 << 20;

/// What a loop is handed when it is spawned.
pub(crate) struct LoopSeed<C> {
    pub(crate) index: usize,
    /// The executor this loop hosts, in `selector`'s epoll set.
    pub(crate) core: CoreSeed,
    pub(crate) selector: Selector,
    pub(crate) inbox: InboxReceiver<Command<C>>,
    pub(crate) listeners: Vec<Listener>,
    pub(crate) datagram_sockets: Vec<Socket>,
    pub(crate) signal_fd: Option<OwnedFd>,
}

/// Every loop's inbox, indexed by loop.
pub(crate) type Peers<C> = Arc<[Arc<InboxSender<Command<C>>>]>;

/// What a slab slot holds.
// Nearly every entry is a connection: boxing it would cost an allocation
// per connection and a pointer chase per event to shrink a few listeners.
#[allow(clippy::large_enum_variant)]
enum Entry<C> {
    Conn(ConnRecord<C>),
    /// A UDP socket: one per loop and address, so boxed to keep the slots
    /// connection-sized.
    Datagram(Box<DatagramRecord<C>>),
    Listener {
        listener: Listener,
        backoff: Duration,
        accept: AcceptOp,
    },
    Signals(OwnedFd),
}

/// How a listener accepts: readiness polls, or (io_uring) a multishot
/// accept whose completions are the new connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AcceptOp {
    /// Readiness polls and `accept4` (epoll, kqueue).
    Polled,
    /// A multishot accept is armed.
    Armed,
    /// Paused after a failure: its cancellation has not landed yet.
    Pausing,
    /// Its cancellation has not landed yet and the pause is over: it is
    /// re-armed when it lands.
    Cancelling,
    /// Paused: re-armed when the pause is over.
    Paused,
}

/// Keys of the loop's timers; each is validated when it fires.
enum TimerKey {
    Tick,
    Conn(Token, ConnTimer),
    AcceptResume(Token),
    ShutdownGrace,
    /// While draining: whether the engine's connections are gone or the
    /// grace is over.
    DrainCheck,
}

/// What a callback loop calls: a `Handler` bound to its engine by the
/// front door (the loop knows connections, not engines), so `on_tick` and
/// `on_shutdown` get their engine and `stop` stops it.
pub(crate) trait Callbacks: Send + Sync + 'static {
    /// Per-connection state, created with `Default` before `on_open`.
    type Context: Default + 'static;
    fn on_open(&self, conn: &mut Conn<'_, Self::Context>) -> Action;
    fn on_traffic(&self, conn: &mut Conn<'_, Self::Context>) -> Action;
    fn on_eof(&self, conn: &mut Conn<'_, Self::Context>) -> Action;
    fn on_close(&self, conn: &mut Conn<'_, Self::Context>, err: Option<&Error>) -> Action;
    /// Loop 0's ticker.
    fn on_tick(&self) -> (Duration, Action);
    /// The last loop is exiting.
    fn on_shutdown(&self);
    /// Stops every loop of the engine (`Action::Shutdown`, a signal, the
    /// runtime stopping).
    fn stop(&self);
}

/// The part of [`Options`] a callback loop reads.
pub(crate) struct LoopConfig {
    read_buffer_size: usize,
    udp_batch: usize,
    async_write_cap: usize,
    max_inbound: usize,
    shutdown_grace: Duration,
    ticker: bool,
    pin_loops: bool,
    load_balancer: LoadBalancer,
    /// What the state machine of every connection applies.
    limits: Limits,
    /// What every accepted or dialed connection is configured with.
    stream: StreamOptions,
}

impl LoopConfig {
    pub(crate) fn new(options: &Options) -> LoopConfig {
        LoopConfig {
            read_buffer_size: options.read_buffer_size,
            udp_batch: options.udp_batch,
            async_write_cap: options.async_write_cap,
            max_inbound: options.max_inbound,
            shutdown_grace: options.shutdown_grace,
            ticker: options.ticker,
            pin_loops: options.pin_loops,
            load_balancer: options.load_balancer,
            limits: Limits {
                high_water: options.high_water,
                low_water: options.low_water,
                close_timeout: options.close_timeout,
                half_open_timeout: options.half_open_timeout,
                #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
                handshake_timeout: options.tls_handshake_timeout,
                idle_timeout: options.idle_timeout,
            },
            stream: StreamOptions::new(options),
        }
    }
}

pub(crate) struct EventLoop<H: Callbacks> {
    index: usize,
    handler: Arc<H>,
    /// The engine's loops: the stop flag and every loop's connection count.
    group: Arc<LoopGroup>,
    /// This loop's counters (`Engine::stats`), written by this thread only.
    counters: Arc<LoopCounters>,
    options: Arc<LoopConfig>,
    /// The loop's executor: async tasks and their descriptors (`rt`).
    core: Rc<Core>,
    selector: Selector,
    events: Events,
    inbox: InboxReceiver<Command<H::Context>>,
    peers: Peers<H::Context>,
    entries: Slab<Entry<H::Context>>,
    timers: TimerHeap<TimerKey>,
    /// The buffer pool, the woken list, the dials and the settings a
    /// callback's `Conn` reaches.
    env: ConnEnv<H::Context>,
    /// Stream reads use its first `read_buffer_size` bytes; a loop serving
    /// UDP has `udp_batch` slots of that size, one per datagram.
    read_buf: Box<[u8]>,
    /// `recvmmsg` headers (loops serving UDP only).
    recv_slots: Option<crate::sys::socket::RecvSlots>,
    /// Connections whose last read filled the read buffer (see `CONN_TRIGGER`).
    unread: Vec<Token>,
    commands: Vec<Command<H::Context>>,
    /// Dialers waiting for a connect on this loop to finish.
    dial_replies: Vec<(Token, DialReply<H::Context>)>,
    now: Instant,
    next_round_robin: usize,
    stopping: bool,
    /// Draining since, and until when at most (`Engine::drain`).
    drain_deadline: Option<Instant>,
    bulk_pending: bool,
    /// The completion data path, when the poller is a ring (io_uring).
    uring: Option<completion::CompletionIo>,
}

impl<H: Callbacks> EventLoop<H> {
    pub(crate) fn new(
        seed: LoopSeed<H::Context>,
        handler: Arc<H>,
        group: Arc<LoopGroup>,
        runtime: Arc<RuntimeShared>,
        peers: Peers<H::Context>,
        options: Arc<LoopConfig>,
    ) -> Self {
        let serves_udp = !seed.datagram_sockets.is_empty();
        let slots = if serves_udp { options.udp_batch } else { 1 };
        let core = Rc::new(Core::new(seed.core, runtime));
        let uring = completion::CompletionIo::open(seed.selector.completion_ring(), seed.index);
        let env = ConnEnv {
            pool: BufferPool::new(POOLED_BYTES),
            woken: Vec::new(),
            inbox: peers[seed.index].clone(),
            dials: Vec::new(),
            async_write_cap: options.async_write_cap,
            max_inbound: options.max_inbound,
            group: group.clone(),
        };
        let mut lp = EventLoop {
            index: seed.index,
            core,
            handler,
            counters: group.counters[seed.index].clone(),
            group,
            // Zeroed allocation: untouched pages of the UDP slots cost no memory.
            read_buf: vec![0; options.read_buffer_size * slots].into_boxed_slice(),
            recv_slots: serves_udp.then(|| crate::sys::socket::RecvSlots::new(slots)),
            options,
            selector: seed.selector,
            events: Events::new(),
            inbox: seed.inbox,
            peers,
            entries: Slab::for_loop(seed.index),
            timers: TimerHeap::new(),
            env,
            unread: Vec::new(),
            commands: Vec::new(),
            dial_replies: Vec::new(),
            now: Instant::now(),
            next_round_robin: 0,
            stopping: false,
            drain_deadline: None,
            bulk_pending: false,
            uring,
        };
        for listener in seed.listeners {
            let fd = listener.socket.as_raw_fd();
            let backoff = ACCEPT_BACKOFF_MIN / 2;
            if let Some(uring) = &lp.uring {
                let token = lp.entries.next_token();
                uring.arm_accept(fd, token);
                let accept = AcceptOp::Armed;
                lp.entries.insert(Entry::Listener {
                    listener,
                    backoff,
                    accept,
                });
            } else {
                let accept = AcceptOp::Polled;
                let entry = Entry::Listener {
                    listener,
                    backoff,
                    accept,
                };
                lp.add_source(fd, entry);
            }
        }
        for socket in seed.datagram_sockets {
            let batch = lp.options.udp_batch;
            let fd = socket.as_raw_fd();
            let rec = DatagramRecord::new(socket, batch, H::Context::default());
            lp.add_source(fd, Entry::Datagram(Box::new(rec)));
        }
        if let Some(fd) = seed.signal_fd {
            lp.add_source(fd.as_raw_fd(), Entry::Signals(fd));
        }
        lp
    }

    /// Watches `fd`, the socket of `entry`, for readiness (level-triggered).
    fn add_source(&mut self, fd: i32, entry: Entry<H::Context>) {
        let token = self.entries.next_token();
        match self
            .selector
            .register(fd, token.raw(), Interest::READABLE, Trigger::Level)
        {
            Ok(()) => {
                self.entries.insert(entry);
            }
            Err(e) => log::error!("netloom: loop {}: cannot watch fd {fd}: {e}", self.index),
        }
    }

    pub(crate) fn run(mut self) -> Result<()> {
        if self.options.pin_loops {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            if let Err(e) = socket::pin_current_thread(self.index % cores) {
                log::warn!("netloom: loop {}: pinning failed: {e}", self.index);
            }
        }
        if self.index == 0 && self.options.ticker {
            self.timers.schedule(self.now, TimerKey::Tick);
        }
        // Callbacks and tasks on this thread reach the executor.
        let _entered = crate::rt::enter(self.core.clone());
        let outcome = self.turn_until_stopped();
        self.finish();
        if let (Some(uring), Ok(())) = (&self.uring, &outcome) {
            uring.check_quiet(self.index);
        }
        self.core.finish();
        let group = self.group.clone();
        let handler = self.handler.clone();
        drop(self);
        if group.loop_exited() && catch_unwind(AssertUnwindSafe(|| handler.on_shutdown())).is_err()
        {
            log::error!("netloom: on_shutdown panicked");
        }
        outcome
    }

    fn turn_until_stopped(&mut self) -> Result<()> {
        loop {
            if !self.stopping && (self.group.is_stopping() || self.core.runtime_is_stopping()) {
                // `rt::Handle::stop` stops the engine whose loops run the tasks.
                self.handler.stop();
                self.begin_shutdown();
                self.core.check_stop(self.now);
            }
            if !self.stopping && self.drain_deadline.is_none() && self.group.is_draining() {
                self.begin_drain();
            }
            // Connections already assigned to this loop but still in its inbox
            // count too: each accepted connection gets on_open and on_close.
            let assigned = self.group.loads[self.index].load(Ordering::Acquire);
            let retiring = self.uring.as_ref().is_some_and(|u| u.is_retiring());
            if self.stopping
                && self.entries.len() == 0
                && assigned == 0
                && !retiring
                && self.core.is_done()
            {
                return Ok(());
            }
            let timeout = if !self.env.woken.is_empty()
                || !self.unread.is_empty()
                || self.bulk_pending
                || !self.env.dials.is_empty()
            {
                Some(Duration::ZERO)
            } else {
                let ours = self.timers.next_timeout(self.now);
                match (ours, self.core.next_timeout(self.now)) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            };
            // Busy time: from the end of the last wait to this one; one
            // clock read per turn beside the one after the wait.
            let waiting_from = Instant::now();
            self.counters.busy(waiting_from - self.now);
            if let Err(e) = self.selector.wait(&mut self.events, timeout) {
                log::error!("netloom: loop {}: epoll_wait failed: {e}", self.index);
                self.close_all(|| Error::Io(io::Error::other("event loop failed")));
                return Err(Error::Io(e));
            }
            self.now = Instant::now();
            let mut inbox_ready = self.bulk_pending;
            for i in 0..self.events.len() {
                let event = self.events.get(i);
                if Token::is_executor(event.token()) {
                    self.core.on_event(&event);
                    continue;
                }
                let token = self.entries.token_of(event.token());
                if token.raw() == Token::WAKER.raw() {
                    // Shared by the loop's inbox and its executor's.
                    self.inbox_waker_reset();
                    self.core.inbox_woken();
                    inbox_ready = true;
                    continue;
                }
                match self.entries.get_mut(token) {
                    Some(Entry::Conn(rec)) => {
                        if event.is_read_closed() {
                            // Edge-triggered: the FIN is reported once, maybe
                            // together with data a short read leaves it behind.
                            rec.io.state.fin_reported();
                        }
                        self.conn_ready(
                            token,
                            event.is_readable() || event.is_read_closed() || event.is_error(),
                            event.is_writable() || event.is_error(),
                        )
                    }
                    Some(Entry::Datagram(_)) => self.datagram_ready(
                        token,
                        event.is_readable() || event.is_error(),
                        event.is_writable(),
                    ),
                    Some(Entry::Listener { .. }) => self.accept_ready(token),
                    Some(Entry::Signals(_)) => self.signal_ready(token),
                    // A stale event for a connection closed earlier in this batch.
                    None => {}
                }
            }
            self.completions_ready();
            self.events.after_wait();
            self.read_again();
            if inbox_ready {
                self.drain_inbox();
            }
            self.run_woken();
            self.fire_timers();
            self.start_dials();
            self.core.after_events(self.now);
            if self.drain_deadline.is_some() && !self.stopping && self.engine_drained() {
                self.handler.stop();
            }
        }
    }

    fn inbox_waker_reset(&self) {
        self.peers[self.index].waker().reset();
    }

    // ---------------------------------------------------------------- I/O

    fn conn_ready(&mut self, token: Token, readable: bool, writable: bool) {
        let Some(Entry::Conn(rec)) = self.entries.get_mut(token) else {
            return;
        };
        if rec.io.state.is_connecting() {
            if writable || readable {
                self.finish_connect(token);
            }
            return;
        }
        if writable && !rec.io.outbound.is_empty() && rec.io.flush_outbound(&mut self.env.pool) {
            rec.io.state.active(self.now);
        }
        let mode = if readable {
            rec.io.state.read_mode()
        } else {
            ReadMode::Ignore
        };
        match mode {
            ReadMode::Discard => return self.discard_input(token),
            ReadMode::Deliver => {
                let read_buf = &mut self.read_buf[..self.options.read_buffer_size];
                match (&rec.io.stream).read(read_buf) {
                    Ok(0) => return self.deliver_eof(token),
                    Ok(n) => {
                        self.counters.read(n);
                        rec.io.state.active(self.now);
                        if n == self.options.read_buffer_size || rec.io.state.fin_pending() {
                            read_again_later(&mut self.unread, rec, token);
                        }
                        return self.deliver(token, n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    // The edge was consumed without a read: try again next turn.
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                        read_again_later(&mut self.unread, rec, token)
                    }
                    Err(e) => rec.io.state.fail(Error::Io(e)),
                }
            }
            ReadMode::Ignore => {}
        }
        self.settle(token);
    }

    /// Hands the `n` bytes just read into the read buffer to the
    /// connection's reader: the PROXY header parser, the TLS session, or
    /// `on_traffic`.
    fn deliver(&mut self, token: Token, n: usize) {
        let Some(Entry::Conn(rec)) = self.entries.get_mut(token) else {
            return;
        };
        if rec.io.state.awaits_proxy_header() {
            return self.proxy_header_traffic(token, n);
        }
        #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
        if rec.io.tls.is_some() {
            return self.tls_traffic(token, n);
        }
        let outcome = self.call(token, n, |h, c| h.on_traffic(c));
        self.apply(token, outcome);
    }

    /// The peer's FIN was read: `on_eof` once every earlier byte went to
    /// the handler.
    fn deliver_eof(&mut self, token: Token) {
        let Some(Entry::Conn(rec)) = self.entries.get_mut(token) else {
            return;
        };
        #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
        if !rec.io.state.awaits_proxy_header() {
            tls::note_end_of_stream(&mut rec.io);
        }
        if rec.io.state.read_eof() {
            let outcome = self.call(token, 0, |h, c| h.on_eof(c));
            return self.apply(token, outcome);
        }
        self.settle(token);
    }

    /// Reads and drops what a closing connection's peer still sends, until
    /// its FIN (then the connection closes) or the kernel has nothing more.
    fn discard_input(&mut self, token: Token) {
        let Some(Entry::Conn(rec)) = self.entries.get_mut(token) else {
            return;
        };
        // A peer that keeps sending gets a few reads per turn, like any other.
        for reads in 1.. {
            match (&rec.io.stream).read(&mut self.read_buf) {
                Ok(0) => {
                    rec.io.state.read_eof();
                    break;
                }
                Ok(n) if reads == 16 => {
                    self.counters.read(n);
                    read_again_later(&mut self.unread, rec, token);
                    break;
                }
                Ok(n) => self.counters.read(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // A reset now costs nothing: our bytes were all sent.
                Err(_) => {
                    rec.io.state.read_eof();
                    break;
                }
            }
        }
        self.settle(token);
    }

    /// Reads the connections whose previous read may have left bytes behind.
    fn read_again(&mut self) {
        if self.unread.is_empty() {
            return;
        }
        let unread = std::mem::take(&mut self.unread);
        for &token in &unread {
            let Some(Entry::Conn(rec)) = self.entries.get_mut(token) else {
                continue;
            };
            rec.unread = false;
            // Reads only if still interested: a paused connection gets a
            // fresh edge when reading is re-armed.
            self.conn_ready(token, true, false);
        }
        if self.unread.is_empty() {
            self.unread = unread;
            self.unread.clear();
        }
    }

    /// Runs a callback on a connection with `fresh` bytes of the read buffer,
    /// containing a panic.
    fn call<R>(
        &mut self,
        token: Token,
        fresh: usize,
        f: impl FnOnce(&H, &mut Conn<'_, H::Context>) -> R,
    ) -> Option<std::thread::Result<R>> {
        self.call_with(token, 0..fresh, f)
    }

    /// [`EventLoop::call`] with the bytes `fresh` of the read buffer.
    fn call_with<R>(
        &mut self,
        token: Token,
        fresh: std::ops::Range<usize>,
        f: impl FnOnce(&H, &mut Conn<'_, H::Context>) -> R,
    ) -> Option<std::thread::Result<R>> {
        let rec = match self.entries.get_mut(token) {
            Some(Entry::Conn(rec)) => RecordMut::Stream(rec),
            Some(Entry::Datagram(rec)) => RecordMut::Datagram(rec),
            _ => return None,
        };
        run_callback(
            rec,
            token,
            &mut self.env,
            &*self.handler,
            &self.read_buf[fresh],
            f,
        )
    }

    /// Carries out a callback's action, then settles the connection (or
    /// the UDP socket).
    fn apply(&mut self, token: Token, outcome: Option<std::thread::Result<Action>>) {
        let rec = match self.entries.get_mut(token) {
            Some(Entry::Conn(rec)) => rec,
            Some(Entry::Datagram(_)) => {
                self.datagram_outcome(token, outcome);
                return self.settle_datagram(token);
            }
            _ => return,
        };
        match outcome {
            Some(Ok(Action::None)) | None => {}
            Some(Ok(Action::Close)) => rec.io.state.close(),
            Some(Ok(Action::Shutdown)) => self.handler.stop(),
            Some(Err(panic)) => {
                let msg = panic_message(&*panic);
                log::error!("netloom: callback panicked on {token:?}: {msg}");
                rec.io.state.fail(Error::CallbackPanic(msg));
            }
        }
        self.settle(token);
    }

    /// Carries out what the connection's state machine decides after
    /// anything touched the connection: the close, a FIN, a timer, the
    /// interest to watch, a waiting connection to resume.
    fn settle(&mut self, token: Token) {
        let Some(Entry::Conn(rec)) = self.entries.get_mut(token) else {
            return;
        };
        let arriving = rec
            .shared
            .as_ref()
            .map_or(0, |s| s.in_flight.load(Ordering::Acquire));
        #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
        if let Some(tls) = &mut rec.io.tls {
            self.counters
                .tls_plaintext_written(tls.take_unreported_written());
        }
        #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
        rec.io
            .seal_tls(arriving, rec.interest.is_writable(), &mut self.env.pool);
        let queued = rec.io.pending();
        let was_paused = rec.io.state.is_backpressured();
        let settled = rec.io.state.settle(
            queued,
            arriving,
            self.now,
            self.stopping,
            &self.options.limits,
        );
        let sent = rec.io.state.sent();
        self.counters.settled(&mut rec.reported, sent, queued);
        if rec.io.state.is_backpressured() != was_paused {
            self.counters.backpressure(!was_paused);
        }
        match settled.effect {
            Effect::None => {}
            Effect::Close => return self.close_conn(token),
            Effect::SendFin => {
                if let Err(e) = rec.io.stream.shutdown(Shutdown::Write) {
                    if rec.io.state.fin_failed(e) {
                        return self.close_conn(token);
                    }
                }
            }
        }
        if let Some((timer, at)) = settled.timer {
            self.timers.schedule(at, TimerKey::Conn(token, timer));
        }
        if let (Some(_), Some(uring)) = (&rec.io.ops, &self.uring) {
            rec.interest = settled.interest;
            uring.settle_ops(rec, token, settled.interest, &mut self.env.woken);
        } else if settled.interest != rec.interest {
            let fd = rec.io.stream.as_raw_fd();
            let armed = self
                .selector
                .reregister(fd, token.raw(), settled.interest, CONN_TRIGGER);
            if let Err(e) = armed {
                rec.io.state.fail(Error::Io(e));
                return self.close_conn(token);
            }
            rec.interest = settled.interest;
        }
        if let Some(shared) = &rec.shared {
            shared.outbound.store(queued, Ordering::Release);
        }
        if settled.drained {
            if let Some(waiter) = rec.drain_waiter.take() {
                self.resume_waiter(*waiter);
            }
        }
    }

    fn close_conn(&mut self, token: Token) {
        let Some(Entry::Conn(mut rec)) = self.entries.remove(token) else {
            return;
        };
        if rec.io.ops.is_none() {
            let _ = self.selector.deregister(rec.io.stream.as_raw_fd());
        }
        rec.io.state.mark_closed();
        if let Some(shared) = &rec.shared {
            shared.closed.store(true, Ordering::Release);
        }
        if let Some(waiter) = rec.drain_waiter.take() {
            self.resume_waiter(*waiter);
        }
        let err = rec.io.state.take_error();
        if let Some(i) = self.dial_replies.iter().position(|(t, _)| *t == token) {
            let (_, reply) = self.dial_replies.swap_remove(i);
            let _ = reply.send(Err(dial_failure(err.as_ref())));
        }
        let mut conn = Conn::new(RecordMut::Stream(&mut rec), token, &mut self.env, &[]);
        let handler = &*self.handler;
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            handler.on_close(&mut conn, err.as_ref())
        }));
        conn.finish();
        match outcome {
            Ok(Action::Shutdown) => self.handler.stop(),
            Ok(_) => {}
            Err(panic) => log::error!("netloom: on_close panicked: {}", panic_message(&*panic)),
        }
        rec.inbound.take(usize::MAX);
        rec.inbound.release_if_empty(&mut self.env.pool);
        self.group.loads[self.index].fetch_sub(1, Ordering::Relaxed);
        // After the load: whoever sees the close counted sees it gone.
        let (sent, paused) = (rec.io.state.sent(), rec.io.state.is_backpressured());
        self.counters
            .closed(&mut rec.reported, sent, paused, err.as_ref());
        // Closes the socket, once requests in flight have completed.
        self.retire(token, rec);
    }

    fn close_all(&mut self, err: impl Fn() -> Error) {
        for token in self.entries.tokens() {
            match self.entries.get_mut(token) {
                Some(Entry::Conn(rec)) => {
                    rec.io.state.fail(err());
                    self.close_conn(token);
                }
                Some(Entry::Datagram(_)) => self.close_datagram_socket(token),
                _ => {}
            }
        }
    }

    // ---------------------------------------------------------- accepting

    fn accept_ready(&mut self, token: Token) {
        for _ in 0..ACCEPT_BATCH {
            let Some(Entry::Listener { listener, .. }) = self.entries.get_mut(token) else {
                return;
            };
            match socket::accept(listener.socket.as_raw_fd()) {
                Ok((stream, peer)) => self.accepted(token, stream, peer),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if socket::is_transient_accept_error(&e) => {
                    self.counters.error(ErrorKind::Accept)
                }
                Err(e) => return self.accept_failed(token, e),
            }
        }
    }

    /// A listener accepted `stream`: it gets the listener's PROXY protocol
    /// and TLS settings and goes to a loop.
    fn accepted(&mut self, token: Token, stream: Socket, peer: Addr) {
        let Some(Entry::Listener {
            listener, backoff, ..
        }) = self.entries.get_mut(token)
        else {
            return;
        };
        *backoff = ACCEPT_BACKOFF_MIN / 2;
        let balanced = listener.balanced;
        let mut incoming = Incoming::plain(stream, peer);
        let options = &listener.options;
        incoming.proxy = options
            .proxy_protocol
            .zip(Some(options.proxy_header_timeout));
        #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
        if let Some(acceptor) = &options.tls {
            match acceptor.session() {
                Ok(session) => incoming.tls = Some(crate::conn::TlsConn::new(session)),
                Err(e) => {
                    log::error!("netloom: TLS session for {}: {e}", incoming.peer);
                    self.counters.error(ErrorKind::Tls);
                    return;
                }
            }
        }
        self.assign(incoming, balanced);
    }

    /// `accept` failed other than transiently: EMFILE and friends leave the
    /// listener readable, so it pauses for a while instead of spinning, and
    /// the loop keeps serving.
    fn accept_failed(&mut self, token: Token, e: io::Error) {
        self.counters.error(ErrorKind::Accept);
        let Some(Entry::Listener {
            listener,
            backoff,
            accept,
        }) = self.entries.get_mut(token)
        else {
            return;
        };
        *backoff = (*backoff * 2).min(ACCEPT_BACKOFF_MAX);
        let pause = *backoff;
        let level = if socket::is_resource_exhaustion(&e) {
            log::Level::Warn
        } else {
            log::Level::Error
        };
        log::log!(
            level,
            "netloom: accept failed: {e}; pausing the listener for {pause:?}"
        );
        match (&self.uring, *accept) {
            (Some(uring), AcceptOp::Armed) => {
                uring.cancel_accept(token);
                *accept = AcceptOp::Pausing;
            }
            (Some(_), AcceptOp::Pausing | AcceptOp::Cancelling) => *accept = AcceptOp::Pausing,
            (Some(_), _) => {}
            (None, _) => {
                let fd = listener.socket.as_raw_fd();
                if let Err(e) =
                    self.selector
                        .reregister(fd, token.raw(), Interest::NONE, Trigger::Level)
                {
                    log::error!("netloom: cannot pause listener: {e}");
                }
            }
        }
        self.timers
            .schedule(self.now + pause, TimerKey::AcceptResume(token));
    }

    /// A paused listener's pause is over.
    fn resume_listener(&mut self, token: Token) {
        let Some(Entry::Listener {
            listener, accept, ..
        }) = self.entries.get_mut(token)
        else {
            return;
        };
        let fd = listener.socket.as_raw_fd();
        match (&self.uring, *accept) {
            (Some(uring), AcceptOp::Paused) => {
                uring.arm_accept(fd, token);
                *accept = AcceptOp::Armed;
            }
            // Its cancellation has not landed yet: it re-arms when it does.
            (Some(_), AcceptOp::Pausing) => *accept = AcceptOp::Cancelling,
            (Some(_), _) => {}
            (None, _) => {
                if let Err(e) =
                    self.selector
                        .reregister(fd, token.raw(), Interest::READABLE, Trigger::Level)
                {
                    log::error!("netloom: cannot resume listener: {e}");
                }
            }
        }
    }

    /// Stops accepting on a listener and closes it (a process it was handed
    /// to keeps it open).
    fn remove_listener(&mut self, token: Token) {
        let Some(Entry::Listener {
            listener, accept, ..
        }) = self.entries.remove(token)
        else {
            return;
        };
        match (&self.uring, accept) {
            // Cancelled now: the request's hold on the socket is gone when
            // the descriptor closes below, and the port with it.
            (Some(uring), AcceptOp::Armed | AcceptOp::Pausing | AcceptOp::Cancelling) => {
                uring.cancel_accept_now(token)
            }
            (Some(_), _) => {}
            (None, _) => {
                let _ = self.selector.deregister(listener.socket.as_raw_fd());
            }
        }
    }

    /// Hands an accepted connection to a loop: this one when the kernel
    /// spreads connections (SO_REUSEPORT), otherwise the load balancer's choice.
    fn assign(&mut self, incoming: Incoming, balanced: bool) {
        let loads = &self.group.loads;
        let target = if !balanced {
            self.index
        } else {
            self.options
                .load_balancer
                .pick(&mut self.next_round_robin, &incoming.peer, loads)
        };
        loads[target].fetch_add(1, Ordering::Relaxed);
        if target == self.index {
            self.register_conn(incoming);
        } else if self.peers[target]
            .send(Lane::Urgent, Command::Register(incoming))
            .is_err()
        {
            loads[target].fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn register_conn(&mut self, incoming: Incoming) {
        let Incoming {
            socket: stream,
            peer,
            proxy,
            #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
            tls,
        } = incoming;
        let loads = &self.group.loads[self.index];
        if let Err(e) = self.options.stream.apply(&stream, &peer) {
            log::warn!("netloom: socket options for {peer} failed: {e}");
        }
        let token = self.entries.next_token();
        let fd = stream.as_raw_fd();
        // Completion-driven connections are watched by their requests.
        if self.uring.is_none() {
            if let Err(e) =
                self.selector
                    .register(fd, token.raw(), Interest::READABLE, CONN_TRIGGER)
            {
                log::error!("netloom: cannot watch connection from {peer}: {e}");
                loads.fetch_sub(1, Ordering::Relaxed);
                return;
            }
        }
        self.counters.accepted();
        let state = ConnState::accepted(self.now);
        let mut rec = ConnRecord::new(stream, peer, state, H::Context::default());
        if self.uring.is_some() {
            rec.io.ops = Some(OpsInFlight::default());
        }
        if let Some((version, timeout)) = proxy {
            #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
            {
                rec.io.tls = tls;
            }
            // on_open (and a TLS handshake) wait for the header.
            return self.await_proxy_header(token, rec, version, timeout);
        }
        #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
        if tls.is_some() {
            rec.io.tls = tls;
            if self.stopping {
                // Accepted just before the stop: no handshake.
                rec.io.state.close();
            }
            self.entries.insert(Entry::Conn(rec));
            self.schedule_idle(token);
            // on_open waits for the handshake.
            return self.start_handshake(token);
        }
        self.entries.insert(Entry::Conn(rec));
        self.schedule_idle(token);
        let outcome = self.call(token, 0, |h, c| h.on_open(c));
        if self.stopping {
            // Accepted just before the stop: greet, flush, close.
            if let Some(Entry::Conn(rec)) = self.entries.get_mut(token) {
                rec.io.state.close();
            }
        }
        self.apply(token, outcome);
    }

    fn signal_ready(&mut self, token: Token) {
        if let Some(Entry::Signals(fd)) = self.entries.get_mut(token) {
            if let Err(e) = crate::sys::signal::take_signal(fd) {
                if e.kind() == io::ErrorKind::WouldBlock {
                    return;
                }
                log::error!("netloom: reading the stop signal failed: {e}");
            }
            log::info!("netloom: stop signal received, shutting down");
            self.handler.stop();
        }
    }

    // -------------------------------------------------------------- inbox

    fn drain_inbox(&mut self) {
        // Commands are collected first (running one needs `&mut self`); the
        // vector is kept across turns so a busy inbox allocates nothing.
        let mut commands = std::mem::take(&mut self.commands);
        self.bulk_pending = self.inbox.drain(|c| commands.push(c));
        for command in commands.drain(..) {
            self.run_command(command);
        }
        self.commands = commands;
    }

    fn run_command(&mut self, command: Command<H::Context>) {
        match command {
            Command::Register(incoming) => self.register_conn(incoming),
            Command::Write { token, data, done } => {
                let len = data.len();
                let outcome = self.write_from_handle(token, len, |out| out.write_owned(data));
                if let Some(done) = done {
                    done(outcome);
                }
            }
            Command::Writev { token, data, done } => {
                let len = data.iter().map(Vec::len).sum();
                let outcome = self.write_from_handle(token, len, |out| {
                    let slices: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
                    out.write_handle_slices(&slices)
                });
                if let Some(done) = done {
                    done(outcome);
                }
            }
            Command::SendTo {
                token,
                to,
                data,
                done,
            } => {
                let len = data.len();
                let outcome = self.write_from_handle(token, len, |out| out.send_to(to, &data));
                if let Some(done) = done {
                    done(outcome);
                }
            }
            Command::Wake(token) => {
                let woken = match self.entries.get_mut(token) {
                    Some(Entry::Conn(rec)) => &mut rec.woken,
                    Some(Entry::Datagram(rec)) => &mut rec.woken,
                    _ => return,
                };
                if !*woken {
                    *woken = true;
                    self.env.woken.push(token);
                }
            }
            // A UDP socket serves every peer: only the engine's stop closes it.
            Command::Close(token) => {
                if let Some(Entry::Conn(rec)) = self.entries.get_mut(token) {
                    rec.io.state.close();
                    self.settle(token);
                }
            }
            Command::ShutdownWrite(token) => {
                if let Some(Entry::Conn(rec)) = self.entries.get_mut(token) {
                    rec.io.state.shutdown_write();
                    self.settle(token);
                }
            }
            Command::Execute(token, task) => {
                let outcome = self.call(token, 0, |_, c| {
                    task(c);
                    Action::None
                });
                self.apply(token, outcome);
            }
            Command::Connect(dial, ctx) => self.start_dial(dial, ctx()),
            Command::AdoptDatagram(socket, reply) => {
                let _ = reply.send(self.adopt_datagram(socket));
            }
            Command::ResumeReading(token) => self.resume_reading(token),
            Command::ResumeWhenDrained { peer, waiter } => {
                let low_water = self.options.limits.low_water;
                let slot = match self.entries.get_mut(peer) {
                    Some(Entry::Conn(rec)) if rec.io.pending() > low_water => &mut rec.drain_waiter,
                    Some(Entry::Datagram(rec)) if rec.io.pending() > low_water => {
                        &mut rec.drain_waiter
                    }
                    _ => return self.resume_waiter(waiter),
                };
                // One waiter per connection: an earlier one is let go.
                if let Some(old) = slot.replace(Box::new(waiter)) {
                    self.resume_waiter(*old);
                }
            }
        }
    }

    fn resume_reading(&mut self, token: Token) {
        if let Some(Entry::Conn(rec)) = self.entries.get_mut(token) {
            rec.io.state.hold_reading(false);
            if rec.fills_inbound_while_paused() && !rec.inbound.is_empty() && !rec.woken {
                // Plaintext decrypted (or bytes after a PROXY header) while
                // paused: no new bytes will raise an edge, so on_traffic is
                // called for them now.
                rec.woken = true;
                self.env.woken.push(token);
            }
            self.settle(token);
        }
    }

    fn resume_waiter(&mut self, waiter: DrainWaiter<H::Context>) {
        if Arc::ptr_eq(&waiter.inbox, &self.peers[self.index]) {
            self.resume_reading(waiter.token);
        } else {
            // Its loop may have exited; then there is nothing left to resume.
            let _ = waiter
                .inbox
                .send(Lane::Urgent, Command::ResumeReading(waiter.token));
        }
    }

    // ------------------------------------------------------------ dialing

    /// Starts the connects that callbacks asked for.
    fn start_dials(&mut self) {
        if self.env.dials.is_empty() {
            return;
        }
        // Dials made by callbacks of these dials wait for the next turn.
        let dials = std::mem::take(&mut self.env.dials);
        for (dial, ctx) in dials {
            self.group.loads[self.index].fetch_add(1, Ordering::Relaxed);
            self.start_dial(dial, ctx);
        }
    }

    /// Serves a UDP socket handed over by a client (its datagrams get
    /// `on_traffic`, as those of a bound `udp://` address) and returns its
    /// handle, whose `async_write` goes to the socket's connected peer.
    fn adopt_datagram(&mut self, socket: Socket) -> Result<ConnHandle<H::Context>> {
        if self.stopping {
            return Err(Error::EngineStopped);
        }
        if self.recv_slots.is_none() {
            // The first UDP socket of this loop: room for a recvmmsg batch.
            let slots = self.options.udp_batch;
            self.read_buf = vec![0; self.options.read_buffer_size * slots].into_boxed_slice();
            self.recv_slots = Some(crate::sys::socket::RecvSlots::new(slots));
        }
        let peer = socket
            .peer_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .unwrap_or_else(|| ([0, 0, 0, 0], 0).into());
        let token = self.entries.next_token();
        self.selector.register(
            socket.as_raw_fd(),
            token.raw(),
            Interest::READABLE,
            Trigger::Level,
        )?;
        let mut rec = DatagramRecord::new(socket, self.options.udp_batch, H::Context::default());
        let handle = ConnHandle::new(
            token,
            rec.shared(),
            self.peers[self.index].clone(),
            self.options.async_write_cap,
        )
        .for_datagrams(peer);
        self.entries.insert(Entry::Datagram(Box::new(rec)));
        Ok(handle)
    }

    /// Issues a non-blocking connect and waits for writability; the outcome
    /// is `on_open`, or `on_close` with the error. The connection is
    /// already counted in this loop's load.
    fn start_dial(&mut self, dial: Dial<H::Context>, ctx: H::Context) {
        let Dial {
            socket,
            addr,
            timeout,
            reply,
            proxy_header,
            #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
            tls,
        } = dial;
        self.counters.dialed();
        let token = self.entries.next_token();
        let started = if self.stopping {
            Err(Error::EngineStopped)
        } else {
            // A Unix connect completes (or fails) at once; EAGAIN there
            // means the listener's backlog is full, which is a failure.
            match sockaddr_of(&addr).and_then(|to| socket.connect(&to)) {
                Ok(()) => Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(()),
                Err(source) => Err(Error::Connect {
                    addr: addr.clone(),
                    source,
                }),
            }
        };
        let registered = started.and_then(|()| {
            self.selector
                .register(
                    socket.as_raw_fd(),
                    token.raw(),
                    Interest::WRITABLE,
                    CONN_TRIGGER,
                )
                .map_err(Error::Io)
        });
        let state = ConnState::connecting(self.now);
        let mut rec = ConnRecord::new(socket, addr, state, ctx);
        rec.interest = Interest::WRITABLE;
        if let Some(header) = proxy_header {
            // First in the queue: before a TLS ClientHello and anything written.
            rec.io.outbound.push_owned(header, &mut self.env.pool);
        }
        #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
        {
            rec.io.tls = tls;
        }
        let failed = registered.err();
        if let Some(e) = failed {
            // Not registered: nothing to deregister, but `close_conn`
            // reports the failure the same way as a late one.
            rec.interest = Interest::NONE;
            rec.io.state.fail(e);
        }
        let failed = rec.io.state.is_failed();
        self.entries.insert(Entry::Conn(rec));
        if let Some(reply) = reply {
            self.dial_replies.push((token, reply));
        }
        if failed {
            self.close_conn(token);
        } else if let Some(limit) = timeout {
            let timer = TimerKey::Conn(token, ConnTimer::Connect);
            self.timers.schedule(self.now + limit, timer);
        }
    }

    /// A connecting socket became writable (or failed): check `SO_ERROR`,
    /// then open the connection or close it with the error.
    fn finish_connect(&mut self, token: Token) {
        let Some(Entry::Conn(rec)) = self.entries.get_mut(token) else {
            return;
        };
        match rec.io.stream.take_error() {
            Ok(None) => {}
            Ok(Some(source)) | Err(source) => {
                rec.io.state.fail(Error::Connect {
                    addr: rec.peer.clone(),
                    source,
                });
                self.close_conn(token);
                return;
            }
        }
        rec.io.state.connected(self.now);
        if let Err(e) = self.options.stream.apply(&rec.io.stream, &rec.peer) {
            log::warn!("netloom: socket options for {} failed: {e}", rec.peer);
        }
        if self.uring.is_some() {
            // Connected: from now on its requests watch it.
            let _ = self.selector.deregister(rec.io.stream.as_raw_fd());
            rec.io.ops = Some(OpsInFlight::default());
        }
        self.schedule_idle(token);
        #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
        if let Some(Entry::Conn(rec)) = self.entries.get_mut(token) {
            if rec.io.tls.is_some() {
                // on_open (and a waiting dialer) wait for the handshake.
                return self.start_handshake(token);
            }
        }
        self.open_conn(token);
    }

    /// Calls `on_open` (a dialed connection once connected, a TLS one once
    /// its handshake finished), then hands a waiting dialer its handle.
    fn open_conn(&mut self, token: Token) {
        let Some(Entry::Conn(rec)) = self.entries.get_mut(token) else {
            return;
        };
        // A waiting dialer gets the handle once on_open has run.
        let waiting = match self.dial_replies.iter().position(|(t, _)| *t == token) {
            Some(i) => {
                let (_, reply) = self.dial_replies.swap_remove(i);
                let handle = ConnHandle::new(
                    token,
                    rec.shared(),
                    self.peers[self.index].clone(),
                    self.options.async_write_cap,
                );
                Some((reply, handle))
            }
            None => None,
        };
        // Bytes written while connecting go out first.
        rec.io.flush_outbound(&mut self.env.pool);
        let outcome = self.call(token, 0, |h, c| h.on_open(c));
        self.apply(token, outcome);
        if let Some((reply, handle)) = waiting {
            let _ = reply.send(Ok(handle));
        }
    }

    /// Carries out a write a handle sent (`len` bytes, no longer in
    /// flight) on a connection or a UDP socket, then settles it.
    fn write_from_handle(
        &mut self,
        token: Token,
        len: usize,
        write: impl FnOnce(Writer<'_>) -> Result<()>,
    ) -> Result<()> {
        let (shared, out) = match self.entries.get_mut(token) {
            Some(Entry::Conn(rec)) => (&rec.shared, Outbound::Stream(&mut rec.io)),
            Some(Entry::Datagram(rec)) => (&rec.shared, Outbound::Datagram(&mut rec.io)),
            _ => return Err(Error::ConnClosed),
        };
        if let Some(shared) = shared {
            // Counted as queued before it stops counting as in flight: a
            // handle never sees it in neither (and let a write pass the
            // cap). Settling stores the exact queue length.
            shared.outbound.fetch_add(len, Ordering::AcqRel);
            shared.in_flight.fetch_sub(len, Ordering::AcqRel);
        }
        let out = Writer::new(out, &mut self.env.pool);
        if !out.accepts_handle_writes() {
            if let Some(shared) = shared {
                shared.outbound.fetch_sub(len, Ordering::AcqRel);
            }
            return Err(Error::ConnClosed);
        }
        let outcome = write(out);
        match self.entries.get_mut(token) {
            Some(Entry::Conn(_)) => self.settle(token),
            Some(Entry::Datagram(_)) => self.settle_datagram(token),
            _ => {}
        }
        outcome
    }

    fn run_woken(&mut self) {
        let woken = std::mem::take(&mut self.env.woken);
        for &token in &woken {
            match self.entries.get_mut(token) {
                Some(Entry::Conn(rec)) => {
                    rec.woken = false;
                    if Self::holds_input(rec) {
                        self.resume_held(token);
                        continue;
                    }
                    if rec.io.state.is_closing() {
                        continue;
                    }
                }
                Some(Entry::Datagram(rec)) => rec.woken = false,
                _ => continue,
            }
            let outcome = self.call(token, 0, |h, c| h.on_traffic(c));
            self.apply(token, outcome);
        }
        if self.env.woken.is_empty() {
            // Keep the allocation for the next turn.
            self.env.woken = woken;
            self.env.woken.clear();
        }
    }

    // ------------------------------------------------------------- timers

    fn fire_timers(&mut self) {
        while let Some(key) = self.timers.pop_due(self.now) {
            match key {
                TimerKey::Tick => self.tick(),
                TimerKey::Conn(token, timer) => self.conn_timer(token, timer),
                TimerKey::AcceptResume(token) => self.resume_listener(token),
                TimerKey::DrainCheck if !self.stopping => {
                    let over = self.drain_deadline.is_some_and(|at| self.now >= at);
                    if over || self.engine_drained() {
                        self.handler.stop();
                    } else {
                        self.timers
                            .schedule(self.now + DRAIN_CHECK, TimerKey::DrainCheck);
                    }
                }
                TimerKey::DrainCheck => {}
                TimerKey::ShutdownGrace => {
                    for token in self.entries.tokens() {
                        if let Some(Entry::Conn(rec)) = self.entries.get_mut(token) {
                            let unsent = rec.io.pending();
                            rec.io.state.fail(Error::CloseTimeout(unsent));
                            self.close_conn(token);
                        }
                    }
                }
            }
        }
    }

    /// Arms the idle timer of a new connection, if idle connections close.
    fn schedule_idle(&mut self, token: Token) {
        if let Some(idle) = self.options.limits.idle_timeout {
            let timer = TimerKey::Conn(token, ConnTimer::Idle);
            self.timers.schedule(self.now + idle, timer);
        }
    }

    /// A connection timer fired: its state machine decides.
    fn conn_timer(&mut self, token: Token, timer: ConnTimer) {
        let Some(Entry::Conn(rec)) = self.entries.get_mut(token) else {
            return;
        };
        let queued = rec.io.pending();
        let verdict =
            rec.io
                .state
                .on_timer(timer, queued, self.now, &self.options.limits, &rec.peer);
        match verdict {
            TimerVerdict::Nothing => {}
            TimerVerdict::Reschedule(at) => self.timers.schedule(at, TimerKey::Conn(token, timer)),
            TimerVerdict::Close => self.close_conn(token),
        }
    }

    fn tick(&mut self) {
        if self.stopping {
            return;
        }
        let handler = &*self.handler;
        let (delay, action) = match catch_unwind(AssertUnwindSafe(|| handler.on_tick())) {
            Ok(outcome) => outcome,
            Err(panic) => {
                log::error!("netloom: on_tick panicked: {}", panic_message(&*panic));
                (Duration::from_secs(1), Action::None)
            }
        };
        if action == Action::Shutdown {
            self.handler.stop();
        }
        self.timers.schedule(self.now + delay, TimerKey::Tick);
    }

    // ----------------------------------------------------------- shutdown

    /// Stops accepting and reading datagrams (the sockets close here; a
    /// process they were handed to keeps them open) and lets connections
    /// finish, until every loop's are gone or `shutdown_grace` has passed.
    fn begin_drain(&mut self) {
        self.drain_deadline = Some(self.now + self.options.shutdown_grace);
        for token in self.entries.tokens() {
            match self.entries.get_mut(token) {
                Some(Entry::Listener { .. }) => self.remove_listener(token),
                Some(Entry::Datagram(_)) => self.close_datagram_socket(token),
                _ => {}
            }
        }
        self.timers
            .schedule(self.now + DRAIN_CHECK, TimerKey::DrainCheck);
    }

    /// Closes a UDP socket at a drain or stop: it is no connection to wait
    /// for. Replies still queued get one try (UDP may drop them anyway).
    fn close_datagram_socket(&mut self, token: Token) {
        let Some(Entry::Datagram(mut rec)) = self.entries.remove(token) else {
            return;
        };
        rec.io.flush(&rec.socket);
        let _ = self.selector.deregister(rec.socket.as_raw_fd());
        if let Some(shared) = &rec.shared {
            shared.closed.store(true, Ordering::Release);
        }
        if let Some(waiter) = rec.drain_waiter.take() {
            self.resume_waiter(*waiter);
        }
        // A UDP socket is not a connection: no on_close, not counted.
    }

    /// Whether no loop of the engine has a connection left.
    fn engine_drained(&self) -> bool {
        self.group.conn_counts().all(|n| n == 0)
    }

    fn begin_shutdown(&mut self) {
        self.stopping = true;
        for token in self.entries.tokens() {
            match self.entries.get_mut(token) {
                Some(Entry::Listener { .. }) => self.remove_listener(token),
                Some(Entry::Signals(_)) => {
                    if let Some(Entry::Signals(fd)) = self.entries.remove(token) {
                        let _ = self.selector.deregister(fd.as_raw_fd());
                    }
                }
                Some(Entry::Datagram(_)) => self.close_datagram_socket(token),
                Some(Entry::Conn(rec)) => {
                    if rec.io.state.is_connecting() {
                        rec.io.state.fail(Error::EngineStopped);
                    }
                    rec.io.state.close();
                    rec.io.flush_outbound(&mut self.env.pool);
                    self.settle(token);
                }
                None => {}
            }
        }
        // A drain that ran out of time leaves no second grace.
        let grace_over = self
            .drain_deadline
            .unwrap_or(self.now + self.options.shutdown_grace);
        self.timers.schedule(grace_over, TimerKey::ShutdownGrace);
    }

    /// Answers what is still queued once the loop has stopped.
    fn finish(&mut self) {
        self.close_all(|| Error::EngineStopped);
        let mut commands = Vec::new();
        while self.inbox.drain(|c| commands.push(c)) {}
        self.env.dials.clear();
        for command in commands {
            match command {
                Command::Register(..) => {
                    self.group.loads[self.index].fetch_sub(1, Ordering::Relaxed);
                }
                Command::Connect(dial, _) => {
                    self.group.loads[self.index].fetch_sub(1, Ordering::Relaxed);
                    if let Some(reply) = dial.reply {
                        let _ = reply.send(Err(Error::EngineStopped));
                    }
                }
                Command::ResumeWhenDrained { waiter, .. } => self.resume_waiter(waiter),
                Command::AdoptDatagram(_, reply) => {
                    let _ = reply.send(Err(Error::EngineStopped));
                }
                Command::Write {
                    done: Some(done), ..
                }
                | Command::Writev {
                    done: Some(done), ..
                }
                | Command::SendTo {
                    done: Some(done), ..
                } => done(Err(Error::EngineStopped)),
                _ => {}
            }
        }
    }
}

/// Runs a callback on connection `token` with the `fresh` bytes just
/// received, containing a panic.
fn run_callback<H: Callbacks, R>(
    rec: RecordMut<'_, H::Context>,
    token: Token,
    env: &mut ConnEnv<H::Context>,
    handler: &H,
    fresh: &[u8],
    f: impl FnOnce(&H, &mut Conn<'_, H::Context>) -> R,
) -> Option<std::thread::Result<R>> {
    let mut conn = Conn::new(rec, token, env, fresh);
    let outcome = catch_unwind(AssertUnwindSafe(|| f(handler, &mut conn)));
    conn.finish();
    Some(outcome)
}

/// The address an outbound connection dialed (always an inet address:
/// `Dial` takes a `SocketAddr`).
/// The kernel form of an address to connect to.
fn sockaddr_of(addr: &Addr) -> io::Result<socket2::SockAddr> {
    match addr {
        Addr::Inet(inet) => Ok((*inet).into()),
        Addr::Unix(unix) => crate::listen::unix_sockaddr(unix),
    }
}

/// Queues a connection to be read again next turn, at most once.
fn read_again_later<C>(unread: &mut Vec<Token>, rec: &mut ConnRecord<C>, token: Token) {
    if !rec.unread {
        rec.unread = true;
        unread.push(token);
    }
}

/// The error a waiting dialer gets for a connection that closed before it
/// opened (the original goes to `on_close`).
fn dial_failure(err: Option<&Error>) -> Error {
    match err {
        Some(Error::Connect { addr, source }) => Error::Connect {
            addr: addr.clone(),
            source: match source.raw_os_error() {
                Some(code) => io::Error::from_raw_os_error(code),
                None => io::Error::new(source.kind(), source.to_string()),
            },
        },
        Some(Error::ConnectTimeout(addr)) => Error::ConnectTimeout(addr.clone()),
        Some(Error::EngineStopped) => Error::EngineStopped,
        Some(Error::Tls(e)) => Error::Tls(e.clone()),
        Some(Error::TlsHandshakeTimeout) => Error::TlsHandshakeTimeout,
        Some(other) => Error::Io(io::Error::other(other.to_string())),
        None => Error::ConnClosed,
    }
}
