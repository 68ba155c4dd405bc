//! Property tests of the PROXY protocol parser: any split of a valid header
//! into reads parses as the whole does and leaves the same bytes after it;
//! arbitrary bytes never panic, never take more than the bound, and end in
//! a typed error or a header.

use std::net::{IpAddr, SocketAddr};

use netloom::proxy_protocol::{
    encode, HeaderParser, Parsed, ProxyHeaderError, ProxyProtocol, V1_MAX_LEN, V2_MAX_LEN,
};
use proptest::prelude::*;

/// Feeds `wire` in reads of `sizes` (cycled). Returns the outcome and the
/// bytes after the header.
fn feed_split(
    version: ProxyProtocol,
    wire: &[u8],
    sizes: &[usize],
) -> Result<Option<(netloom::proxy_protocol::ProxyHeader, Vec<u8>)>, ProxyHeaderError> {
    let mut parser = HeaderParser::new(version);
    let mut sizes = sizes.iter().cycle();
    let mut at = 0;
    while at < wire.len() {
        let size = (*sizes.next().unwrap()).clamp(1, wire.len() - at);
        let read = &wire[at..at + size];
        if let Parsed::Done { header, consumed } = parser.feed(read)? {
            assert!(consumed <= read.len());
            return Ok(Some((*header, wire[at + consumed..].to_vec())));
        }
        at += size;
    }
    Ok(None)
}

fn version() -> impl Strategy<Value = ProxyProtocol> {
    prop_oneof![Just(ProxyProtocol::V1), Just(ProxyProtocol::V2)]
}

fn socket_addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, port)| (IpAddr::from(ip), port).into()),
        (any::<[u8; 16]>(), any::<u16>()).prop_map(|(ip, port)| (IpAddr::from(ip), port).into()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_split_parses_as_the_whole(
        version in version(),
        addrs in proptest::option::of((socket_addr(), socket_addr())),
        tail in proptest::collection::vec(any::<u8>(), 0..64),
        sizes in proptest::collection::vec(1usize..20, 1..8),
    ) {
        let mut wire = encode(version, addrs);
        wire.extend_from_slice(&tail);
        let whole = feed_split(version, &wire, &[wire.len()]).unwrap().expect("complete");
        let split = feed_split(version, &wire, &sizes).unwrap().expect("complete");
        prop_assert_eq!(&whole, &split);
        prop_assert_eq!(&split.1, &tail);
        if let Some((src, _)) = addrs {
            let client = split.0.source().and_then(|a| a.inet()).expect("a client");
            prop_assert_eq!(client.port(), src.port());
        }
    }

    #[test]
    fn random_bytes_never_panic_and_stay_bounded(
        version in version(),
        prefix in prop_oneof![
            Just(Vec::new()),
            Just(b"PROXY ".to_vec()),
            Just(b"PROXY TCP4 ".to_vec()),
            Just(b"\r\n\r\n\0\r\nQUIT\n".to_vec()),
            Just(b"\r\n\r\n\0\r\nQUIT\n\x21".to_vec()),
        ],
        noise in proptest::collection::vec(any::<u8>(), 0..600),
        sizes in proptest::collection::vec(1usize..64, 1..8),
    ) {
        let mut wire = prefix;
        wire.extend_from_slice(&noise);
        let bound = match version {
            ProxyProtocol::V1 => V1_MAX_LEN,
            ProxyProtocol::V2 => V2_MAX_LEN,
        };
        match feed_split(version, &wire, &sizes) {
            Ok(Some((_, rest))) => prop_assert!(wire.len() - rest.len() <= bound),
            Ok(None) => prop_assert!(wire.len() < bound),
            Err(_) => {}
        }
    }
}
