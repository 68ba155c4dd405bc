//! The callback loop's PROXY protocol step: an accepted connection's
//! header is read before anything else (`ListenerOptions::proxy_protocol`);
//! then the connection opens, or its TLS handshake starts, with the bytes
//! that followed the header in the same read.

use std::time::Duration;

use super::{Callbacks, Entry, EventLoop, TimerKey};
use crate::conn::{ConnRecord, ConnTimer, ProxyStage, ReadMode};
use crate::proxy_protocol::{HeaderParser, Parsed, ProxyCommand, ProxyProtocol};
use crate::reactor::token::Token;
use crate::Error;

impl<H: Callbacks> EventLoop<H> {
    /// Registers an accepted connection whose first bytes must be a PROXY
    /// header of `version`, arriving within `timeout`.
    pub(super) fn await_proxy_header(
        &mut self,
        token: Token,
        mut rec: ConnRecord<H::Context>,
        version: ProxyProtocol,
        timeout: Duration,
    ) {
        rec.proxy = Some(Box::new(ProxyStage::Reading(HeaderParser::new(version))));
        rec.io.state.begin_proxy_header();
        if self.stopping {
            // Accepted just before the stop: it never opens.
            rec.io.state.close();
        }
        self.entries.insert(Entry::Conn(rec));
        self.schedule_idle(token);
        let at = self.now + timeout;
        self.timers
            .schedule(at, TimerKey::Conn(token, ConnTimer::ProxyHeader));
        self.settle(token);
    }

    /// `fresh` bytes of the read buffer continue the PROXY header. Once
    /// it is complete: the client becomes the peer, then the connection
    /// opens (or starts its TLS handshake) and the bytes after the header
    /// are its first input.
    pub(super) fn proxy_header_traffic(&mut self, token: Token, fresh: usize) {
        let Some(Entry::Conn(rec)) = self.entries.get_mut(token) else {
            return;
        };
        let Some(ProxyStage::Reading(parser)) = rec.proxy.as_deref_mut() else {
            return;
        };
        let (header, consumed) = match parser.feed(&self.read_buf[..fresh]) {
            Ok(Parsed::Incomplete) => return self.settle(token),
            Ok(Parsed::Done { header, consumed }) => (header, consumed),
            Err(e) => {
                rec.io.state.fail(Error::ProxyHeader(e));
                return self.settle(token);
            }
        };
        let header = header.with_balancer(rec.peer.clone());
        if let (ProxyCommand::Proxy, Some(client)) = (header.command(), header.source()) {
            rec.peer = client.clone();
        }
        rec.proxy = Some(Box::new(ProxyStage::Parsed(header)));
        rec.io.state.proxy_header_done();
        #[cfg(any(feature = "tls-aws-lc-rs", feature = "tls-ring"))]
        if rec.io.tls.is_some() {
            // The handshake reads its records from the read buffer's start.
            self.read_buf.copy_within(consumed..fresh, 0);
            self.start_handshake(token);
            if consumed < fresh {
                self.tls_traffic(token, fresh - consumed);
            }
            return;
        }
        self.open_conn(token);
        if consumed == fresh {
            return;
        }
        match self.entries.get_mut(token) {
            Some(Entry::Conn(rec)) if rec.io.state.read_mode() == ReadMode::Deliver => {
                let outcome = self.call_with(token, consumed..fresh, |h, c| h.on_traffic(c));
                self.apply(token, outcome);
            }
            // `on_open` paused reading: the bytes wait in the connection's
            // buffer for `on_traffic` after it resumes, as a TLS
            // connection's first plaintext does.
            Some(Entry::Conn(rec)) if !rec.io.state.is_closing() => {
                rec.inbound
                    .extend(&self.read_buf[consumed..fresh], &mut self.env.pool);
            }
            _ => {}
        }
    }
}
