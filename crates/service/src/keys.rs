//! API keys: authenticating a presented token, issuing and revoking keys.
//!
//! The token format, hashing and constant-time comparison are in
//! `access.rs`; this component is their use against the store. Keys live in
//! the store, so a revocation holds at once on every instance.
//!
//! Refused authentications (401) are counted per client (the server's
//! limit key: an address, or an IPv6 /64) and written to the audit trail
//! as one row per client per window with the count, by [`Keys::flush_refused`]:
//! key guessing is visible without one row per guess flooding the log.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use face_store::{ApiKey, FaceStore, NewApiKey};

use crate::access::{self, Caller, IssuedKey, Principal, Scope};
use crate::audit::AuditTrail;
use crate::ServiceError;

/// Distinct clients whose refusals are tallied per window; beyond this,
/// further clients are counted together, so the tally's memory is bounded.
const MAX_TALLIED_CLIENTS: usize = 10_000;
const OTHER_CLIENTS: &str = "(other clients)";

/// A stored key as the caller it authenticates.
fn principal(key: ApiKey) -> Principal {
    Principal {
        key_id: Some(key.id),
        key_name: key.name,
        scopes: key
            .scopes
            .iter()
            .filter_map(|s| Scope::parse(s).ok())
            .collect(),
    }
}

/// The key registry.
#[derive(Clone)]
pub struct Keys {
    store: Arc<dyn FaceStore>,
    audit: AuditTrail,
    /// Refused authentications per client since the last flush. A std
    /// mutex: held for one map update, never across an await.
    refused: Arc<Mutex<HashMap<String, u64>>>,
}

impl Keys {
    /// Keys in `store`, changes recorded in `audit`.
    pub fn new(store: Arc<dyn FaceStore>, audit: AuditTrail) -> Self {
        Self {
            store,
            audit,
            refused: Arc::default(),
        }
    }

    /// Counts one refused authentication from `client`.
    pub fn refused(&self, client: &str) {
        let mut map = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        let key = if map.len() < MAX_TALLIED_CLIENTS || map.contains_key(client) {
            client
        } else {
            OTHER_CLIENTS
        };
        *map.entry(key.to_string()).or_default() += 1;
    }

    /// Writes one audit row per client refused since the last flush, with
    /// the count; `window` describes the period in the row.
    pub async fn flush_refused(&self, window: std::time::Duration) {
        let tally = std::mem::take(&mut *self.refused.lock().unwrap_or_else(|p| p.into_inner()));
        for (client, count) in tally {
            tracing::warn!(%client, count, "refused authentications");
            let caller = Caller {
                key_id: None,
                key_name: None,
                client: Some(client),
                client_key: None,
                scopes: Vec::new(),
                probe: None,
            };
            self.audit
                .record(
                    &caller,
                    "authenticate",
                    "refused",
                    None,
                    None,
                    Some(format!(
                        "{count} refused authentication(s) (401) in {} s",
                        window.as_secs().max(1)
                    )),
                )
                .await;
        }
    }

    /// The key behind a bearer token; `Unauthenticated` for a missing,
    /// malformed, unknown or revoked one (the same answer for all, so a
    /// caller learns nothing about which keys exist).
    pub async fn authenticate(&self, token: Option<&str>) -> Result<Principal, ServiceError> {
        let refused = || {
            ServiceError::Unauthenticated(
                "a valid API key is required: send `Authorization: Bearer fg_...` \
                 (an administrator creates keys with `facegate keys create`)"
                    .into(),
            )
        };
        let failed = |reason: &'static str| {
            metrics::counter!(crate::telemetry::AUTH_FAILURES, "reason" => reason).increment(1);
            refused()
        };
        let token = token.ok_or_else(|| failed("missing"))?;
        let (prefix, secret) = access::parse_token(token).ok_or_else(|| failed("malformed"))?;
        let key = self
            .store
            .api_key_by_prefix(prefix)
            .await?
            .ok_or_else(|| failed("unknown"))?;
        // The secret is compared first, so a revoked key is only named as
        // such (in the metric, never to the caller) to whoever holds it.
        if !access::secret_matches(secret, &key.secret_hash) {
            return Err(failed("wrong_secret"));
        }
        if key.revoked_at.is_some() {
            return Err(failed("revoked"));
        }
        Ok(principal(key))
    }

    /// The key with this id as a principal, if it exists and is not
    /// revoked (a stream ticket is only as good as its key at the moment
    /// it is redeemed).
    pub async fn principal_of(&self, key_id: i64) -> Result<Option<Principal>, ServiceError> {
        Ok(self
            .store
            .list_api_keys()
            .await?
            .into_iter()
            .find(|k| k.id == key_id && k.revoked_at.is_none())
            .map(principal))
    }

    /// Makes a key; the token is returned once and never stored.
    pub async fn create(
        &self,
        caller: &Caller,
        name: &str,
        scopes: &[Scope],
    ) -> Result<IssuedKey, ServiceError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
            return Err(ServiceError::Invalid {
                field: "name",
                message: "a key name is 1-200 characters without control characters".into(),
            });
        }
        if scopes.is_empty() {
            return Err(ServiceError::Invalid {
                field: "scopes",
                message: "at least one scope: admin, enrol, recognize".into(),
            });
        }
        let (prefix, secret) = access::new_token()?;
        let mut names: Vec<String> = scopes.iter().map(|s| s.as_str().to_string()).collect();
        names.sort();
        names.dedup();
        let key = self
            .store
            .create_api_key(NewApiKey {
                name: name.to_string(),
                prefix: prefix.clone(),
                secret_hash: access::secret_hash(&secret),
                scopes: names,
            })
            .await?;
        self.audit
            .record(
                caller,
                "key_create",
                "ok",
                None,
                None,
                Some(format!("key {}", key.id)),
            )
            .await;
        Ok(IssuedKey {
            key,
            token: access::format_token(&prefix, &secret),
        })
    }

    /// All keys (without their secrets, which are not stored).
    pub async fn list(&self) -> Result<Vec<ApiKey>, ServiceError> {
        Ok(self.store.list_api_keys().await?)
    }

    /// Revokes a key: it authenticates nothing from now on, on every
    /// instance.
    pub async fn revoke(&self, caller: &Caller, id: i64) -> Result<(), ServiceError> {
        let result = if caller.key_id == Some(id) {
            // A key revoking itself is nearly always a mistake (or a fuzzer)
            // and can leave the operator with no admin key at all.
            Err(ServiceError::Conflict(format!(
                "key {id} is the key making this request and cannot revoke itself: revoke it \
                 with another admin key, or with `facegate keys revoke {id}` on the server"
            )))
        } else {
            self.store.revoke_api_key(id).await.map_err(|e| match e {
                face_store::StoreError::NotFound(_) => ServiceError::KeyNotFound(id),
                other => other.into(),
            })
        };
        self.audit
            .result(caller, "key_revoke", &result, None, None)
            .await;
        result
    }
}
