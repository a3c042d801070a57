//! Stream tickets: a browser cannot set a header on a WebSocket, so a page
//! asks for a ticket with its API key over HTTP and opens the stream with
//! the ticket instead.
//!
//! A ticket is 32 random bytes, single use, valid for [`TICKET_TTL`], and
//! stands for the key that asked for it. Only a SHA-256 of it is kept, in
//! the store (both stores, on the store's clock), so behind a load
//! balancer the WebSocket may reach any instance; redeeming is one
//! conditional delete, so of two instances only one accepts it. A ticket
//! opens only what its key may do when it is redeemed: the key is read
//! again then, and a key revoked meanwhile opens nothing. Expired tickets
//! are deleted whenever one is issued.

use std::sync::Arc;
use std::time::Duration;

use face_store::FaceStore;
use sha2::{Digest, Sha256};

use crate::access::Principal;
use crate::keys::Keys;
use crate::ServiceError;

/// How long a ticket may wait to be redeemed.
pub const TICKET_TTL: Duration = Duration::from_secs(30);

/// Stream tickets in the store.
#[derive(Clone)]
pub struct StreamTickets {
    store: Arc<dyn FaceStore>,
    keys: Keys,
}

impl StreamTickets {
    pub fn new(store: Arc<dyn FaceStore>, keys: Keys) -> Self {
        Self { store, keys }
    }

    /// Issues a ticket for `principal`'s key: the ticket, and how long it
    /// lasts.
    pub async fn issue(&self, principal: &Principal) -> Result<(String, Duration), ServiceError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)
            .map_err(|e| ServiceError::Internal(format!("no randomness for a ticket: {e}")))?;
        let ticket: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        self.store
            .create_stream_ticket(
                digest(&ticket),
                principal.key_id,
                TICKET_TTL.as_secs() as u32,
            )
            .await?;
        Ok((ticket, TICKET_TTL))
    }

    /// The principal a ticket stands for, once: its key as it is now. A
    /// second redemption, an expired or unknown ticket, or one whose key
    /// was revoked since, is `None`.
    pub async fn redeem(&self, ticket: &str) -> Result<Option<Principal>, ServiceError> {
        match self.store.redeem_stream_ticket(digest(ticket)).await? {
            None => Ok(None),
            Some(None) => Ok(Some(Principal::unauthenticated())),
            Some(Some(key_id)) => self.keys.principal_of(key_id).await,
        }
    }
}

fn digest(ticket: &str) -> [u8; 32] {
    Sha256::digest(ticket.trim().as_bytes()).into()
}
