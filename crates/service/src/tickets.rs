//! Stream tickets: a browser cannot set a header on a WebSocket, so a page
//! asks for a ticket with its API key over HTTP and opens the stream with
//! the ticket instead.
//!
//! A ticket is 32 random bytes, single use, valid for [`TICKET_TTL`], and
//! stands for the key that asked for it (its id, name and scopes at that
//! moment). Only a SHA-256 of it is kept, in this instance's memory: a
//! ticket is redeemed seconds after it is issued, by the same client, so
//! behind a load balancer the WebSocket must reach the instance that issued
//! it (sticky sessions, or the key header instead of a ticket); keeping
//! them in the store is the multi-instance issue's. Expired tickets are
//! swept on every issue, so memory stays bounded by the issue rate.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::access::Principal;
use crate::ServiceError;

/// How long a ticket may wait to be redeemed.
pub const TICKET_TTL: Duration = Duration::from_secs(30);

/// Most tickets outstanding at once (a flood of issues is refused, not
/// stored).
const MAX_OUTSTANDING: usize = 10_000;

/// The outstanding tickets of this instance.
#[derive(Debug, Default)]
pub struct StreamTickets {
    outstanding: Mutex<HashMap<[u8; 32], (Principal, Instant)>>,
}

impl StreamTickets {
    /// Issues a ticket for `principal`: the ticket, and how long it lasts.
    pub fn issue(&self, principal: Principal) -> Result<(String, Duration), ServiceError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)
            .map_err(|e| ServiceError::Internal(format!("no randomness for a ticket: {e}")))?;
        let ticket: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let mut map = self.outstanding.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, (_, at)| at.elapsed() < TICKET_TTL);
        if map.len() >= MAX_OUTSTANDING {
            return Err(ServiceError::Busy);
        }
        map.insert(digest(&ticket), (principal, Instant::now()));
        Ok((ticket, TICKET_TTL))
    }

    /// The principal a ticket stands for, once: a second redemption, an
    /// expired or an unknown ticket is `None`.
    pub fn redeem(&self, ticket: &str) -> Option<Principal> {
        let mut map = self.outstanding.lock().unwrap_or_else(|p| p.into_inner());
        let (principal, at) = map.remove(&digest(ticket))?;
        (at.elapsed() < TICKET_TTL).then_some(principal)
    }
}

fn digest(ticket: &str) -> [u8; 32] {
    Sha256::digest(ticket.trim().as_bytes()).into()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_ticket_is_redeemed_once() {
        let t = StreamTickets::default();
        let (ticket, ttl) = t.issue(Principal::unauthenticated()).unwrap();
        assert_eq!(ticket.len(), 64);
        assert_eq!(ttl, TICKET_TTL);
        assert!(t.redeem("not a ticket").is_none());
        assert_eq!(t.redeem(&ticket), Some(Principal::unauthenticated()));
        assert!(t.redeem(&ticket).is_none(), "single use");
    }
}
