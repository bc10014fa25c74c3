//! Open connections per client address, so one client cannot take a listener's whole connection cap.
//!
//! The table holds only addresses with a connection open (an entry goes when its count reaches 0), so
//! it is never larger than the listener's cap. Addresses are grouped by [`client_group`] (IPv6 per /64).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use crate::client_address::client_group;

/// The per-address counts of one listener.
#[derive(Debug, Clone)]
pub struct Clients {
    max_per_client: usize,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One open connection of a client; dropping it frees its place.
#[derive(Debug)]
pub struct ClientSlot {
    address: IpAddr,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Clients {
    /// At most `max_per_client` connections per address (at least 1).
    pub fn new(max_per_client: usize) -> Self {
        Self { max_per_client: max_per_client.max(1), open: Arc::default() }
    }

    /// A place for one more connection from `peer`, or `None` when it has its share already.
    pub fn enter(&self, peer: IpAddr) -> Option<ClientSlot> {
        let address = client_group(peer);
        let mut open = self.open.lock().expect("clients lock");
        let count = open.entry(address).or_insert(0);
        if *count >= self.max_per_client {
            return None;
        }
        *count += 1;
        Some(ClientSlot { address, open: self.open.clone() })
    }

    /// Addresses with a connection open (for tests of the table's bound).
    pub fn len(&self) -> usize {
        self.open.lock().expect("clients lock").len()
    }

    /// Whether no address has a connection open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().expect("clients lock");
        if let Some(count) = open.get_mut(&self.address) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.address);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_its_share_and_the_table_forgets_it_when_it_leaves() {
        let clients = Clients::new(2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let (first, second) = (clients.enter(a).unwrap(), clients.enter(a).unwrap());
        assert!(clients.enter(a).is_none());
        assert!(clients.enter("10.0.0.2".parse().unwrap()).is_some_and(|_| true));
        drop(first);
        let third = clients.enter(a).expect("a place was freed");
        drop((second, third));
        assert!(clients.is_empty());
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let clients = Clients::new(1);
        let _one = clients.enter("2001:db8:1:2::1".parse().unwrap()).unwrap();
        assert!(clients.enter("2001:db8:1:2:ffff::9".parse().unwrap()).is_none());
        assert!(clients.enter("2001:db8:1:3::1".parse().unwrap()).is_some());
        let _v4 = clients.enter("192.0.2.7".parse().unwrap()).unwrap();
        assert!(clients.enter("::ffff:192.0.2.7".parse().unwrap()).is_none());
    }
}
