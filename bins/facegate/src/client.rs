//! Who the client is: the one address that logs, the audit trail and the
//! rate limits all use.
//!
//! The TCP peer, unless the peer is a trusted proxy (`server.trusted_proxies`,
//! a CIDR list): then `X-Forwarded-For` names the client, read from the
//! right, skipping addresses that are themselves trusted proxies (the
//! right-most untrusted address is the first one no trusted hop could have
//! been lied to about). A client cannot name itself: a header from an
//! untrusted peer is ignored. Rate limits key IPv6 clients by their /64, the
//! block one subscriber usually holds, so rotating addresses within it does
//! not buy more requests.

use std::net::{IpAddr, Ipv6Addr};
use std::os::fd::AsFd;
use std::sync::Arc;

use actix_web::dev::ServiceRequest;
use actix_web::HttpMessage;
use ipnet::IpNet;

/// The client of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl ClientAddr {
    /// The key for per-client limits and aggregated counts: the address for
    /// IPv4, its /64 for IPv6.
    pub fn limit_key(self) -> IpAddr {
        match self.0 {
            IpAddr::V4(a) => IpAddr::V4(a),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let s = a.segments();
                    IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
                }
            },
        }
    }

    /// The limit key as text, e.g. `203.0.113.7` or `2001:db8:1:2::/64`.
    pub fn limit_key_text(self) -> String {
        match self.limit_key() {
            IpAddr::V4(a) => a.to_string(),
            IpAddr::V6(a) => format!("{a}/64"),
        }
    }
}

impl std::fmt::Display for ClientAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A second handle on a plain-TCP connection's socket, kept in the
/// connection's data, so queued work can ask whether the client is still
/// there (TLS connections have none, and their work is never skipped).
#[derive(Debug, Clone)]
pub struct PeerSocket(Arc<std::net::TcpStream>);

impl PeerSocket {
    /// For `actix_web::HttpServer::on_connect`: the socket of a plain TCP
    /// connection, duplicated; `None` for anything else.
    pub fn of_connection(conn: &dyn std::any::Any) -> Option<Self> {
        let tcp = conn.downcast_ref::<actix_web::rt::net::TcpStream>()?;
        let fd = tcp.as_fd().try_clone_to_owned().ok()?;
        Some(Self(Arc::new(std::net::TcpStream::from(fd))))
    }

    /// Whether the peer is still connected: a peek that finds the stream
    /// at its end (or reset) means it hung up. The socket is non-blocking
    /// (the runtime's), so the peek never waits; pipelined bytes of a next
    /// request count as "there".
    pub fn is_open(&self) -> bool {
        let mut byte = [0u8; 1];
        match self.0.peek(&mut byte) {
            Ok(0) => false,
            Ok(_) => true,
            Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
        }
    }
}

/// Parses `server.trusted_proxies`; the error names the bad entry.
pub fn parse_proxies(list: &[String]) -> Result<Vec<IpNet>, String> {
    list.iter()
        .map(|s| {
            let s = s.trim();
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("{s:?} is not an address or a CIDR block (e.g. 10.0.0.0/8)"))
        })
        .collect()
}

fn trusted(addr: IpAddr, proxies: &[IpNet]) -> bool {
    let addr = match addr {
        IpAddr::V6(a) => a.to_ipv4_mapped().map_or(IpAddr::V6(a), IpAddr::V4),
        v4 => v4,
    };
    proxies.iter().any(|net| net.contains(&addr))
}

/// One `X-Forwarded-For` hop: an address, optionally bracketed (IPv6) and
/// with a port, as some proxies write it.
fn parse_hop(hop: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(hop).ok()?.trim();
    if let Ok(addr) = text.parse::<IpAddr>() {
        return Some(addr);
    }
    if let Ok(sock) = text.parse::<std::net::SocketAddr>() {
        return Some(sock.ip());
    }
    text.strip_prefix('[')?.strip_suffix(']')?.parse().ok()
}

/// The client behind `peer`, given the `X-Forwarded-For` values in order
/// (as bytes: a client's garbage in its own part of a header line must not
/// hide the hops a trusted proxy appended after it).
pub fn resolve<'a>(
    peer: IpAddr,
    forwarded_for: impl Iterator<Item = &'a [u8]>,
    proxies: &[IpNet],
) -> IpAddr {
    if !trusted(peer, proxies) {
        return peer;
    }
    let hops: Vec<&[u8]> = forwarded_for
        .flat_map(|v| v.split(|b| *b == b','))
        .collect();
    for hop in hops.iter().rev() {
        let Some(addr) = parse_hop(hop) else {
            // A malformed hop: nothing left of it can be trusted.
            return peer;
        };
        if !trusted(addr, proxies) {
            return addr;
        }
    }
    peer
}

/// The client of `req`, resolved once and kept in its extensions.
pub fn of(req: &ServiceRequest, proxies: &[IpNet]) -> Option<ClientAddr> {
    if let Some(c) = req.extensions().get::<ClientAddr>() {
        return Some(*c);
    }
    let peer = req.peer_addr()?.ip();
    let headers = req.headers().get_all("x-forwarded-for");
    let client = ClientAddr(resolve(peer, headers.map(|v| v.as_bytes()), proxies));
    req.extensions_mut().insert(client);
    Some(client)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_counts_only_from_trusted_proxies() {
        let proxies = parse_proxies(&["10.0.0.0/8".into(), "192.0.2.1".into()]).unwrap();
        let xff = |h: &'static str| std::iter::once(h.as_bytes());
        // An untrusted peer cannot name a client.
        assert_eq!(
            resolve(ip("203.0.113.9"), xff("1.2.3.4"), &proxies),
            ip("203.0.113.9")
        );
        // A trusted peer: the right-most untrusted hop.
        assert_eq!(
            resolve(
                ip("10.1.1.1"),
                xff("1.2.3.4, 198.51.100.7, 10.2.2.2"),
                &proxies
            ),
            ip("198.51.100.7")
        );
        // Several headers are one list.
        let two = ["1.2.3.4", "198.51.100.8"].map(str::as_bytes);
        assert_eq!(
            resolve(ip("192.0.2.1"), two.into_iter(), &proxies),
            ip("198.51.100.8")
        );
        // Only proxies, garbage, or nothing: the peer.
        assert_eq!(
            resolve(ip("10.1.1.1"), xff("10.3.3.3"), &proxies),
            ip("10.1.1.1")
        );
        assert_eq!(
            resolve(ip("10.1.1.1"), xff("1.2.3.4, bogus"), &proxies),
            ip("10.1.1.1")
        );
        assert_eq!(
            resolve(ip("10.1.1.1"), std::iter::empty(), &proxies),
            ip("10.1.1.1")
        );
        assert!(parse_proxies(&["10.0.0.0/33".into()]).is_err());
        // A client's non-UTF-8 bytes do not hide what the proxy appended;
        // ports and brackets are read.
        let dirty: [&[u8]; 1] = [b"\xff\xfe, 198.51.100.9"];
        assert_eq!(
            resolve(ip("10.1.1.1"), dirty.into_iter(), &proxies),
            ip("198.51.100.9")
        );
        for (hop, want) in [
            ("198.51.100.4:5678", "198.51.100.4"),
            ("[2001:db8::7]:443", "2001:db8::7"),
            ("[2001:db8::8]", "2001:db8::8"),
        ] {
            assert_eq!(
                resolve(ip("10.1.1.1"), xff(hop), &proxies),
                ip(want),
                "{hop}"
            );
        }
    }

    #[test]
    fn ipv6_clients_are_limited_by_their_64() {
        let a = ClientAddr(ip("2001:db8:1:2:aaaa::1"));
        let b = ClientAddr(ip("2001:db8:1:2:bbbb::2"));
        let c = ClientAddr(ip("2001:db8:1:3::1"));
        assert_eq!(a.limit_key(), b.limit_key());
        assert_ne!(a.limit_key(), c.limit_key());
        assert_eq!(a.limit_key_text(), "2001:db8:1:2::/64");
        assert_eq!(
            ClientAddr(ip("::ffff:192.0.2.5")).limit_key(),
            ip("192.0.2.5")
        );
    }
}
