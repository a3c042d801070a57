//! Liveness challenge sessions and the single-use tokens a passed session
//! issues, as the store keeps them.
//!
//! A session is created with its challenge (opaque JSON to the store), is
//! finished once (a conditional update: open and not expired), and a pass
//! issues a token in the same transaction. A token is kept as the SHA-256
//! of its secret with what it is bound to (the session, the API key, the
//! claimed user, the session's face embedding) and is redeemed by one
//! conditional `DELETE ... RETURNING`: a second use, another key, another
//! user or an expired token finds no row. The rule of what a session
//! checks is the service's; the store only keeps the state, on its own
//! clock, shared by every instance and kept across restarts.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::access::KeyId;
use crate::error::{Result, StoreError};
use crate::types::UserId;

/// A session to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewLivenessSession {
    /// Random public id (letters and digits, 16–64 characters).
    pub id: String,
    /// `verify` or `enrol`.
    pub purpose: String,
    /// The claimed user of a verify session.
    pub user_id: Option<UserId>,
    /// The key that created it.
    pub key_id: Option<KeyId>,
    /// The challenge, as the service serialises it.
    pub challenge: serde_json::Value,
    /// Seconds from now (store clock) until it expires.
    pub ttl_secs: u32,
}

/// A stored session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LivenessSession {
    /// See [`NewLivenessSession`].
    pub id: String,
    /// See [`NewLivenessSession`].
    pub purpose: String,
    /// See [`NewLivenessSession`].
    pub user_id: Option<UserId>,
    /// See [`NewLivenessSession`].
    pub key_id: Option<KeyId>,
    /// See [`NewLivenessSession`].
    pub challenge: serde_json::Value,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
    /// `passed` or the failure's reason once finished; `None` while open.
    pub outcome: Option<String>,
}

/// The token a passed session issues.
#[derive(Debug, Clone, PartialEq)]
pub struct NewLivenessToken {
    /// SHA-256 of the token's secret.
    pub token_hash: [u8; 32],
    /// The model of `embedding`.
    pub model_id: String,
    /// The session's face, to compare the redeeming photo with.
    pub embedding: Vec<f32>,
    /// Seconds from now until it expires.
    pub ttl_secs: u32,
}

/// What a redeemed token was bound to.
#[derive(Debug, Clone, PartialEq)]
pub struct RedeemedToken {
    /// The session that issued it.
    pub session_id: String,
    /// The model of `embedding`.
    pub model_id: String,
    /// The session's face.
    pub embedding: Vec<f32>,
}

/// Checks a session before it is written.
pub(crate) fn validate_session(s: &NewLivenessSession) -> Result<()> {
    let id_ok = (16..=64).contains(&s.id.len()) && s.id.bytes().all(|b| b.is_ascii_alphanumeric());
    let purpose_ok = matches!(
        (s.purpose.as_str(), s.user_id),
        ("verify", Some(_)) | ("enrol", None)
    );
    if !id_ok || !purpose_ok || s.ttl_secs == 0 {
        return Err(StoreError::BadData(
            "a liveness session needs a 16-64 character alphanumeric id, purpose verify (with a \
             user) or enrol (without), and a positive lifetime"
                .into(),
        ));
    }
    Ok(())
}

/// Checks a session's outcome and its token before they are written.
pub(crate) fn validate_finish(outcome: &str, token: Option<&NewLivenessToken>) -> Result<()> {
    let outcome_ok = !outcome.is_empty()
        && outcome.len() <= 64
        && outcome.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    let token_ok = match token {
        None => outcome != "passed",
        Some(t) => {
            outcome == "passed"
                && t.ttl_secs > 0
                && !t.embedding.is_empty()
                && t.embedding.iter().all(|v| v.is_finite())
        }
    };
    if !outcome_ok || !token_ok {
        return Err(StoreError::BadData(
            "a session passes with a token (finite embedding, positive lifetime) and fails with a \
             reason code and none"
                .into(),
        ));
    }
    Ok(())
}

/// An embedding as stored: little-endian f32s.
pub(crate) fn embedding_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The inverse of [`embedding_bytes`].
pub(crate) fn embedding_from_bytes(b: &[u8]) -> Result<Vec<f32>> {
    if !b.len().is_multiple_of(4) {
        return Err(StoreError::Internal(format!(
            "stored token embedding of {} bytes",
            b.len()
        )));
    }
    Ok(b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}
