//! Who may call what: API keys and their scopes, and the caller identity
//! every audited use case records.
//!
//! A key is `fg_<prefix>_<secret>`: a 12-character random public prefix
//! that finds the stored row, and 32 random bytes of secret (64 hex
//! digits) of which only the SHA-256 is stored. The secret is shown once,
//! when the key is made. Checking a key looks the prefix up and compares
//! SHA-256 digests in constant time, so timing tells an attacker nothing
//! about how much of a guess was right. Secrets are 256-bit random, so a
//! fast hash is enough: there is nothing to brute-force that a slow one
//! would protect.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::ServiceError;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Manage users, keys, lockouts and read the audit log; implies the
    /// other scopes.
    Admin,
    /// Enrol users and add faces.
    Enrol,
    /// Identify (1:N) and verify (1:1).
    Recognize,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Scope; 3] = [Scope::Admin, Scope::Enrol, Scope::Recognize];

    /// The scope's name as keys and settings spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Admin => "admin",
            Scope::Enrol => "enrol",
            Scope::Recognize => "recognize",
        }
    }

    /// Parses a name; `Invalid` names the known scopes.
    pub fn parse(s: &str) -> Result<Self, ServiceError> {
        Scope::ALL
            .into_iter()
            .find(|x| x.as_str() == s.trim())
            .ok_or_else(|| ServiceError::Invalid {
                field: "scopes",
                message: format!("unknown scope {s:?} (known: admin, enrol, recognize)"),
            })
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The key's id; `None` when authentication is switched off.
    pub key_id: Option<i64>,
    /// The key's name.
    pub key_name: String,
    /// What it may do.
    pub scopes: Vec<Scope>,
}

impl Principal {
    /// The caller when authentication is switched off: everything allowed.
    pub fn unauthenticated() -> Self {
        Self {
            key_id: None,
            key_name: "(auth disabled)".into(),
            scopes: Scope::ALL.to_vec(),
        }
    }

    /// Whether the key may do what `needed` allows (admin may do all).
    pub fn allows(&self, needed: Scope) -> bool {
        self.scopes.contains(&needed) || self.scopes.contains(&Scope::Admin)
    }

    /// `Forbidden` unless [`Principal::allows`].
    pub fn require(&self, needed: Scope) -> Result<(), ServiceError> {
        if self.allows(needed) {
            Ok(())
        } else {
            Err(ServiceError::Forbidden {
                needed,
                action: "call this route",
            })
        }
    }
}

/// Whether the client of a request is still there to read the answer: a
/// check the server provides (it owns the connection), asked just before
/// queued face work starts.
#[derive(Clone)]
pub struct ClientProbe(std::sync::Arc<dyn Fn() -> bool + Send + Sync>);

impl ClientProbe {
    /// A probe from a check that answers `true` while the client is there.
    pub fn new(check: impl Fn() -> bool + Send + Sync + 'static) -> Self {
        Self(std::sync::Arc::new(check))
    }

    /// Whether the client is still there.
    pub fn is_there(&self) -> bool {
        (self.0)()
    }
}

impl std::fmt::Debug for ClientProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientProbe")
    }
}

impl PartialEq for ClientProbe {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for ClientProbe {}

/// Who made a request: the key and the client address for the audit log,
/// and the key's scopes, for the decisions a use case reserves to `admin`
/// (loosening a threshold, adding a face that does not verify, enrolling a
/// duplicate).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Caller {
    /// The API key's id.
    pub key_id: Option<i64>,
    /// The API key's name (for `whoami`; the audit log records the id).
    pub key_name: Option<String>,
    /// The client's IP address.
    pub client: Option<String>,
    /// The client as limits count it (an IPv6 client's /64), when it
    /// differs from `client`.
    pub client_key: Option<String>,
    /// What the key may do (empty: nothing beyond the route it reached).
    pub scopes: Vec<Scope>,
    /// Whether the client is still connected, where the server can tell.
    pub probe: Option<ClientProbe>,
}

impl Caller {
    /// The operator at the command line: every scope, audited as `cli`.
    pub fn command_line() -> Self {
        Self {
            key_id: None,
            key_name: None,
            client: Some("cli".into()),
            client_key: None,
            scopes: vec![Scope::Admin],
            probe: None,
        }
    }

    /// Whether the key may do what `needed` allows (admin may do all).
    pub fn allows(&self, needed: Scope) -> bool {
        self.scopes.contains(&needed) || self.scopes.contains(&Scope::Admin)
    }

    /// `Forbidden` naming `needed` and what it was needed for, unless
    /// [`Caller::allows`].
    pub fn require(&self, needed: Scope, action: &'static str) -> Result<(), ServiceError> {
        if self.allows(needed) {
            Ok(())
        } else {
            Err(ServiceError::Forbidden { needed, action })
        }
    }
}

/// A freshly made key: the stored row's id and the full secret, to be shown
/// once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedKey {
    /// The stored key.
    pub key: face_store::ApiKey,
    /// `fg_<prefix>_<secret>`: give this to the client; it is not stored.
    pub token: String,
}

const TOKEN_PREFIX: &str = "fg_";
const PREFIX_BYTES: usize = 6;
const SECRET_BYTES: usize = 32;

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Random prefix and secret, from the operating system's CSPRNG.
pub(crate) fn new_token() -> Result<(String, String), ServiceError> {
    let mut prefix = [0u8; PREFIX_BYTES];
    let mut secret = [0u8; SECRET_BYTES];
    getrandom::fill(&mut prefix)
        .and_then(|()| getrandom::fill(&mut secret))
        .map_err(|e| ServiceError::Internal(format!("no randomness for a key: {e}")))?;
    Ok((hex(&prefix), hex(&secret)))
}

/// The token clients send.
pub(crate) fn format_token(prefix: &str, secret: &str) -> String {
    format!("{TOKEN_PREFIX}{prefix}_{secret}")
}

/// Splits a token into prefix and secret; `None` for anything malformed.
pub(crate) fn parse_token(token: &str) -> Option<(&str, &str)> {
    let rest = token.trim().strip_prefix(TOKEN_PREFIX)?;
    let (prefix, secret) = rest.split_once('_')?;
    let hexy = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hexy(prefix, PREFIX_BYTES * 2) && hexy(secret, SECRET_BYTES * 2)).then_some((prefix, secret))
}

/// SHA-256 of the secret part.
pub(crate) fn secret_hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Constant-time comparison of a presented secret with a stored digest.
pub(crate) fn secret_matches(secret: &str, stored: &[u8]) -> bool {
    let presented = secret_hash(secret);
    stored.len() == presented.len() && bool::from(presented.ct_eq(stored))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn tokens_round_trip_and_malformed_ones_are_refused() {
        let (p, s) = new_token().unwrap();
        let t = format_token(&p, &s);
        assert_eq!(parse_token(&t), Some((p.as_str(), s.as_str())));
        assert_eq!(t.len(), 3 + 12 + 1 + 64);
        let upper = t.to_uppercase();
        let dashed = t.replace('_', "-");
        let longer = format!("{t}0");
        for bad in ["", "fg_", "fg_abc_def", &t[1..], &longer, &dashed, &upper] {
            assert!(parse_token(bad).is_none(), "{bad}");
        }
        let (p2, _) = new_token().unwrap();
        assert_ne!(p, p2, "prefixes are random");
    }

    #[test]
    fn secrets_compare_by_digest() {
        let (_, s) = new_token().unwrap();
        let h = secret_hash(&s);
        assert!(secret_matches(&s, &h));
        assert!(!secret_matches(&format!("{s}x"), &h));
        assert!(!secret_matches(&s, &h[..31]));
    }

    #[test]
    fn admin_implies_every_scope_and_others_only_themselves() {
        let admin = Principal {
            key_id: Some(1),
            key_name: "a".into(),
            scopes: vec![Scope::Admin],
        };
        let kiosk = Principal {
            key_id: Some(2),
            key_name: "k".into(),
            scopes: vec![Scope::Recognize],
        };
        assert!(Scope::ALL.iter().all(|s| admin.allows(*s)));
        assert!(kiosk.allows(Scope::Recognize));
        assert!(!kiosk.allows(Scope::Enrol) && !kiosk.allows(Scope::Admin));
        assert!(matches!(
            kiosk.require(Scope::Admin),
            Err(ServiceError::Forbidden {
                needed: Scope::Admin,
                ..
            })
        ));
        assert_eq!(Scope::parse(" enrol ").unwrap(), Scope::Enrol);
        assert!(Scope::parse("root").is_err());
    }
}
