use super::*;

fn sock(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Parses `wire` whole; returns the header and the bytes after it.
fn parse(version: ProxyProtocol, wire: &[u8]) -> Result<(ProxyHeader, Vec<u8>), ProxyHeaderError> {
    match HeaderParser::new(version).feed(wire)? {
        Parsed::Done { header, consumed } => Ok((*header, wire[consumed..].to_vec())),
        Parsed::Incomplete => panic!("incomplete: {wire:?}"),
    }
}

/// A version 2 header with `family`, `addresses` and raw `tlvs`.
fn v2(command: u8, family: u8, addresses: &[u8], tlvs: &[u8]) -> Vec<u8> {
    let mut out = V2_SIGNATURE.to_vec();
    out.push(0x20 | command);
    out.push(family);
    let len = (addresses.len() + tlvs.len()) as u16;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(addresses);
    out.extend_from_slice(tlvs);
    out
}

fn tlv(kind: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![kind];
    out.extend_from_slice(&(value.len() as u16).to_be_bytes());
    out.extend_from_slice(value);
    out
}

#[test]
fn v1_tcp4_and_tcp6_report_the_client() {
    let (h, rest) = parse(
        ProxyProtocol::V1,
        b"PROXY TCP4 192.0.2.7 198.51.100.1 50000 443\r\nGET /",
    )
    .unwrap();
    assert_eq!(h.command(), ProxyCommand::Proxy);
    assert_eq!(h.source(), Some(&Addr::Inet(sock("192.0.2.7:50000"))));
    assert_eq!(h.destination(), Some(&Addr::Inet(sock("198.51.100.1:443"))));
    assert_eq!(rest, b"GET /");
    let (h, rest) = parse(ProxyProtocol::V1, b"PROXY TCP6 2001:db8::7 ::1 65535 0\r\n").unwrap();
    assert_eq!(h.source(), Some(&Addr::Inet(sock("[2001:db8::7]:65535"))));
    assert_eq!(h.destination(), Some(&Addr::Inet(sock("[::1]:0"))));
    assert!(rest.is_empty());
}

#[test]
fn v1_unknown_keeps_the_socket_addresses() {
    for line in [
        &b"PROXY UNKNOWN\r\n"[..],
        b"PROXY UNKNOWN ffff::1 ::1 1 2\r\n",
    ] {
        let (h, _) = parse(ProxyProtocol::V1, line).unwrap();
        assert_eq!((h.command(), h.source()), (ProxyCommand::Local, None));
    }
}

#[test]
fn v1_rejects_malformed_lines() {
    let cases: &[&[u8]] = &[
        b"PROXY TCP4 192.0.2.7 198.51.100.1 50000 443\n",
        b"PROXY TCP4 ::1 198.51.100.1 50000 443\r\n",
        b"PROXY TCP6 192.0.2.7 ::1 1 2\r\n",
        b"PROXY TCP4 192.0.2.7 198.51.100.1 65536 443\r\n",
        b"PROXY TCP4 192.0.2.7 198.51.100.1 +5 443\r\n",
        b"PROXY TCP4 192.0.2.7 198.51.100.1 050 443\r\n",
        b"PROXY TCP4 192.0.2.7 198.51.100.1 50000\r\n",
        b"PROXY TCP4 192.0.2.7 198.51.100.1 1 2 3\r\n",
        b"PROXY TCP4  192.0.2.7 198.51.100.1 1 2\r\n",
        b"PROXY UDP4 192.0.2.7 198.51.100.1 1 2\r\n",
        b"PROXY \r\n",
    ];
    for case in cases {
        let err = HeaderParser::new(ProxyProtocol::V1).feed(case).unwrap_err();
        assert!(
            matches!(err, ProxyHeaderError::Malformed(_)),
            "{case:?}: {err}"
        );
    }
}

#[test]
fn a_client_without_a_header_fails_at_its_first_byte() {
    let mut parser = HeaderParser::new(ProxyProtocol::V1);
    assert_eq!(parser.feed(b"G"), Err(ProxyHeaderError::Missing));
    let mut parser = HeaderParser::new(ProxyProtocol::V2);
    assert_eq!(parser.feed(b"\r\n\r"), Ok(Parsed::Incomplete));
    assert_eq!(parser.feed(b"X"), Err(ProxyHeaderError::Missing));
    // The other version's header is no header of this one.
    let v2_header = encode(ProxyProtocol::V2, None);
    let err = HeaderParser::new(ProxyProtocol::V1).feed(&v2_header);
    assert_eq!(err, Err(ProxyHeaderError::Missing));
    let err = HeaderParser::new(ProxyProtocol::V2).feed(b"PROXY UNKNOWN\r\n");
    assert_eq!(err, Err(ProxyHeaderError::Missing));
}

#[test]
fn v1_stops_at_its_bound_without_taking_more() {
    let mut line = b"PROXY UNKNOWN ".to_vec();
    line.resize(V1_MAX_LEN - 2, b'x');
    line.extend_from_slice(b"\r\n");
    assert!(
        parse(ProxyProtocol::V1, &line).is_ok(),
        "107 bytes is the limit"
    );
    let mut long = b"PROXY UNKNOWN ".to_vec();
    long.resize(V1_MAX_LEN + 500, b'x');
    let mut parser = HeaderParser::new(ProxyProtocol::V1);
    let err = parser.feed(&long).unwrap_err();
    assert_eq!(
        err,
        ProxyHeaderError::TooLong {
            len: V1_MAX_LEN,
            max: V1_MAX_LEN
        }
    );
    assert_eq!(parser.buf.len(), V1_MAX_LEN, "keeps no byte past the bound");
}

#[test]
fn v2_inet_addresses_and_the_bytes_after() {
    let mut addresses = vec![192, 0, 2, 7, 198, 51, 100, 1];
    addresses.extend_from_slice(&50000u16.to_be_bytes());
    addresses.extend_from_slice(&443u16.to_be_bytes());
    let mut wire = v2(1, 0x11, &addresses, &[]);
    wire.extend_from_slice(b"\x16\x03\x01");
    let (h, rest) = parse(ProxyProtocol::V2, &wire).unwrap();
    assert_eq!(h.version(), ProxyProtocol::V2);
    assert_eq!(h.source(), Some(&Addr::Inet(sock("192.0.2.7:50000"))));
    assert_eq!(h.destination(), Some(&Addr::Inet(sock("198.51.100.1:443"))));
    assert_eq!(
        rest, b"\x16\x03\x01",
        "a TLS ClientHello after the header stays"
    );

    let src = sock("[2001:db8::7]:1234");
    let dst = sock("[2001:db8::1]:80");
    let (h, _) = parse(
        ProxyProtocol::V2,
        &encode(ProxyProtocol::V2, Some((src, dst))),
    )
    .unwrap();
    assert_eq!(
        (h.source(), h.destination()),
        (Some(&src.into()), Some(&dst.into()))
    );
}

#[test]
fn v2_local_and_unspec_carry_no_client() {
    let (h, _) = parse(ProxyProtocol::V2, &v2(0, 0x11, &[9; 12], &[])).unwrap();
    assert_eq!((h.command(), h.source()), (ProxyCommand::Local, None));
    let (h, _) = parse(ProxyProtocol::V2, &v2(1, 0x00, &[], &[])).unwrap();
    assert_eq!((h.command(), h.source()), (ProxyCommand::Proxy, None));
}

#[test]
fn v2_unix_addresses() {
    let mut addresses = vec![0u8; 216];
    addresses[..9].copy_from_slice(b"/run/a.s\0");
    addresses[108] = 0;
    addresses[109..113].copy_from_slice(b"name");
    let (h, _) = parse(ProxyProtocol::V2, &v2(1, 0x31, &addresses, &[])).unwrap();
    assert_eq!(
        h.source(),
        Some(&Addr::Unix(UnixAddr::Path("/run/a.s".into())))
    );
    assert_eq!(
        h.destination(),
        Some(&Addr::Unix(UnixAddr::Abstract(b"name".to_vec())))
    );
}

#[test]
fn v2_tlvs_raw_and_decoded() {
    let mut ssl = vec![0x07, 0, 0, 0, 0];
    ssl.extend(tlv(PP2_SUBTYPE_SSL_VERSION, b"TLSv1.3"));
    ssl.extend(tlv(PP2_SUBTYPE_SSL_CN, b"client.example"));
    ssl.extend(tlv(PP2_SUBTYPE_SSL_CIPHER, b"TLS_AES_128_GCM_SHA256"));
    let mut tlvs = tlv(PP2_TYPE_ALPN, b"h2");
    tlvs.extend(tlv(PP2_TYPE_AUTHORITY, b"example.com"));
    tlvs.extend(tlv(PP2_TYPE_UNIQUE_ID, b"\x01\x02id"));
    tlvs.extend(tlv(0x04, b"")); // PP2_TYPE_NOOP
    tlvs.extend(tlv(PP2_TYPE_SSL, &ssl));
    let (h, _) = parse(ProxyProtocol::V2, &v2(1, 0x11, &[1; 12], &tlvs)).unwrap();
    assert_eq!(h.tlvs().len(), 5);
    assert_eq!(h.alpn(), Some(&b"h2"[..]));
    assert_eq!(h.authority(), Some("example.com"));
    assert_eq!(h.unique_id(), Some(&b"\x01\x02id"[..]));
    assert_eq!(h.tlv(0x04), Some(&b""[..]));
    let ssl = h.ssl().unwrap();
    assert!(ssl.verified());
    assert_eq!(ssl.version(), Some("TLSv1.3"));
    assert_eq!(ssl.common_name(), Some("client.example"));
    assert_eq!(ssl.cipher(), Some("TLS_AES_128_GCM_SHA256"));
}

#[test]
fn v2_rejects_malformed_headers() {
    let cut_tlv = [PP2_TYPE_ALPN, 0, 5, b'h'];
    let cases = [
        v2(1, 0x11, &[1; 8], &[]),       // too short for IPv4
        v2(1, 0x21, &[1; 12], &[]),      // too short for IPv6
        v2(2, 0x11, &[1; 12], &[]),      // unknown command
        v2(1, 0x41, &[1; 12], &[]),      // unknown family
        v2(1, 0x13, &[1; 12], &[]),      // unknown protocol
        v2(1, 0x11, &[1; 12], &cut_tlv), // a TLV past the end
        v2(1, 0x11, &[1; 12], &[1, 0]),  // a TLV header past the end
    ];
    for case in &cases {
        let err = HeaderParser::new(ProxyProtocol::V2).feed(case).unwrap_err();
        assert!(
            matches!(err, ProxyHeaderError::Malformed(_)),
            "{case:?}: {err}"
        );
    }
    let mut wrong_version = v2(1, 0x11, &[1; 12], &[]);
    wrong_version[12] = 0x11;
    assert!(matches!(
        HeaderParser::new(ProxyProtocol::V2).feed(&wrong_version),
        Err(ProxyHeaderError::Malformed(_))
    ));
}

#[test]
fn v2_refuses_a_length_over_its_bound_at_the_fixed_part() {
    let mut header = V2_SIGNATURE.to_vec();
    header.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
    let err = HeaderParser::new(ProxyProtocol::V2)
        .feed(&header)
        .unwrap_err();
    assert_eq!(
        err,
        ProxyHeaderError::TooLong {
            len: 16 + 0xffff,
            max: V2_MAX_LEN
        }
    );
    let at_bound = v2(
        1,
        0x11,
        &[1; 12],
        &tlv(0x04, &vec![0; V2_MAX_LEN - 16 - 15]),
    );
    assert_eq!(at_bound.len(), V2_MAX_LEN);
    assert!(parse(ProxyProtocol::V2, &at_bound).is_ok());
}

#[test]
fn crc32c_matches_the_standard_check_value() {
    assert_eq!(!crc32c_update(!0, b"123456789"), 0xE306_9283);
}

#[test]
fn v2_checksum_is_verified() {
    let mut tlvs = tlv(PP2_TYPE_ALPN, b"h2");
    tlvs.extend(tlv(PP2_TYPE_CRC32C, &[0; 4]));
    let mut header = v2(1, 0x11, &[7; 12], &tlvs);
    let crc = !crc32c_update(!0, &header);
    let at = header.len() - 4;
    header[at..].copy_from_slice(&crc.to_be_bytes());
    assert!(parse(ProxyProtocol::V2, &header).is_ok());
    header[20] ^= 1;
    assert_eq!(
        HeaderParser::new(ProxyProtocol::V2).feed(&header),
        Err(ProxyHeaderError::Checksum)
    );
}

#[test]
fn one_byte_reads_parse_as_the_whole() {
    let src = sock("192.0.2.7:50000");
    let dst = sock("198.51.100.1:443");
    for version in [ProxyProtocol::V1, ProxyProtocol::V2] {
        let mut wire = encode(version, Some((src, dst)));
        let header_len = wire.len();
        wire.extend_from_slice(b"tail");
        let mut parser = HeaderParser::new(version);
        let mut done = None;
        for (i, byte) in wire.iter().enumerate() {
            match parser.feed(std::slice::from_ref(byte)).unwrap() {
                Parsed::Incomplete => assert!(i < header_len - 1),
                Parsed::Done { header, consumed } => {
                    assert_eq!((i, consumed), (header_len - 1, 1));
                    done = Some(header);
                    break;
                }
            }
        }
        let header = done.expect("parsed");
        assert_eq!(header.source(), Some(&src.into()));
        assert_eq!(*header, parse(version, &wire).unwrap().0);
    }
}

#[test]
fn encode_maps_mixed_families_and_round_trips_local() {
    let src = sock("192.0.2.7:1");
    let dst = sock("[2001:db8::1]:2");
    let v1 = encode(ProxyProtocol::V1, Some((src, dst)));
    assert_eq!(v1, b"PROXY TCP6 ::ffff:192.0.2.7 2001:db8::1 1 2\r\n");
    let (h, _) = parse(ProxyProtocol::V1, &v1).unwrap();
    assert_eq!(h.source(), Some(&Addr::Inet(sock("[::ffff:192.0.2.7]:1"))));
    for version in [ProxyProtocol::V1, ProxyProtocol::V2] {
        let (h, rest) = parse(version, &encode(version, None)).unwrap();
        assert_eq!(
            (h.command(), h.source(), rest.len()),
            (ProxyCommand::Local, None, 0)
        );
    }
}

#[test]
fn the_balancer_is_unnamed_until_the_engine_sets_it() {
    let (h, _) = parse(ProxyProtocol::V1, b"PROXY UNKNOWN\r\n").unwrap();
    assert_eq!(h.balancer(), &Addr::Unix(UnixAddr::Unnamed));
    let balancer = Addr::Inet(sock("127.0.0.1:7"));
    assert_eq!(h.with_balancer(balancer.clone()).balancer(), &balancer);
}
