//! Whom a request comes from, for the limits kept per client (connections per address, progress
//! reports per address): IPv4 addresses whole, IPv4-mapped IPv6 addresses as their IPv4 address, and
//! other IPv6 addresses by their /64, the block one host is usually given (a limit per IPv6 address
//! would be a limit per nothing).

use std::net::{IpAddr, Ipv6Addr};

/// The client `peer` counts as.
pub fn client_group(peer: IpAddr) -> IpAddr {
    match peer.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        v4 => v4,
    }
}
