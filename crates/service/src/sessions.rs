//! Liveness challenge sessions as a use case: created with a random
//! head-turn challenge for one purpose (verify a user, or enrol), kept in
//! the store so that they outlive a restart and any instance can take the
//! answer, and visible only to the key that created them.
//!
//! Answering a session is `answer.rs`; the token a pass issues is
//! redeemed here, once, by the verification (`FaceService::verify_with_token`)
//! or the enrolment (`EnrolRequest::liveness_token`) it was for.

use chrono::{DateTime, Utc};
use face_store::liveness::{LivenessSession, NewLivenessSession, RedeemedToken};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::access::{Caller, Scope};
use crate::challenge::{Challenge, ChallengePolicy, SessionFailure};
use crate::error::for_user;
use crate::{FaceService, ServiceError};

/// What the store keeps of a token: its SHA-256.
pub(crate) fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// How long a passed session's token may wait to be redeemed, seconds
/// (the default).
pub const TOKEN_TTL_SECS: u32 = 120;

/// Expired sessions (and the tokens of their passes) are deleted this long
/// after they expire, when the next session is created; the audit log
/// keeps their outcome.
pub const PURGE_AFTER_SECS: u32 = 3600;

/// How long sessions and tokens last (`security.liveness_session_ttl_secs`,
/// `security.liveness_token_ttl_secs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChallengeTimes {
    /// From creation to the last frame taken, seconds.
    pub session_ttl_secs: u32,
    /// From a pass to the token's redemption, seconds.
    pub token_ttl_secs: u32,
}

impl Default for ChallengeTimes {
    fn default() -> Self {
        Self {
            session_ttl_secs: SESSION_TTL_SECS,
            token_ttl_secs: TOKEN_TTL_SECS,
        }
    }
}

impl ChallengeTimes {
    /// Checked: a session lasts 10–600 s (it must hold a whole challenge,
    /// and not linger), a token 1–600 s.
    pub fn new(session_ttl_secs: u32, token_ttl_secs: u32) -> Result<Self, String> {
        if !(10..=600).contains(&session_ttl_secs) {
            return Err(format!(
                "a liveness session must last 10..=600 seconds, not {session_ttl_secs}"
            ));
        }
        if !(1..=600).contains(&token_ttl_secs) {
            return Err(format!(
                "a liveness token must last 1..=600 seconds, not {token_ttl_secs}"
            ));
        }
        Ok(Self {
            session_ttl_secs,
            token_ttl_secs,
        })
    }
}

/// Every how many frames the passive check runs (when it is available).
pub const PAD_EVERY: usize = 5;

/// One frame of an answer: its bytes and the client's timestamp
/// (milliseconds, any origin; must increase).
#[derive(Debug, Clone)]
pub struct SessionFrame {
    /// A JPEG (or any photo format the decoder takes).
    pub bytes: Vec<u8>,
    /// The client's capture time, milliseconds.
    pub client_ms: u64,
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionResult {
    /// The session.
    pub session_id: String,
    /// Whether the challenge was met by a live person (and, for a verify
    /// session, by the claimed user).
    pub passed: bool,
    /// Why not.
    pub reason: Option<SessionFailure>,
    /// The single-use token a pass issues (shown once; the store keeps its
    /// hash).
    pub token: Option<String>,
    /// Frames taken.
    pub frames: usize,
    /// Whether the passive check ran (its model files are installed); when
    /// false the session proved turns, not the absence of a screen.
    pub pad_checked: bool,
}

/// How long a session may take to be answered, seconds (the default).
pub const SESSION_TTL_SECS: u32 = 60;

/// The most frames one session takes.
pub const MAX_SESSION_FRAMES: usize = 400;

/// What a session is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "purpose", rename_all = "snake_case")]
pub enum SessionPurpose {
    /// Prove that the person in front of the camera is this user
    /// (`recognize` scope).
    Verify {
        /// The claimed user.
        user_id: i64,
    },
    /// Prove a live person before enrolling them (`enrol` scope).
    Enrol,
}

/// A session as its creator sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChallengeSession {
    /// The session's id (random, 32 hex digits).
    pub id: String,
    /// What it is for.
    #[serde(flatten)]
    pub purpose: SessionPurpose,
    /// The turns to make, in order, each followed by a return to frontal.
    pub challenge: Challenge,
    /// When it was created (store clock).
    pub created_at: DateTime<Utc>,
    /// When it expires (store clock).
    pub expires_at: DateTime<Utc>,
    /// The most frames it takes.
    pub max_frames: usize,
    /// The longest one phase (a turn, a return) may take, seconds.
    pub phase_timeout_secs: u64,
    /// `passed` or the failure's reason once answered.
    pub outcome: Option<String>,
}

impl ChallengeSession {
    fn from_stored(s: LivenessSession) -> Result<Self, ServiceError> {
        let purpose = match (s.purpose.as_str(), s.user_id) {
            ("verify", Some(user_id)) => SessionPurpose::Verify { user_id },
            ("enrol", None) => SessionPurpose::Enrol,
            _ => {
                return Err(ServiceError::Internal(format!(
                    "stored liveness session {} has purpose {:?}",
                    s.id, s.purpose
                )))
            }
        };
        let challenge: Challenge = serde_json::from_value(s.challenge).map_err(|e| {
            ServiceError::Internal(format!("stored challenge of session {}: {e}", s.id))
        })?;
        if !(2..=3).contains(&challenge.steps.len()) {
            return Err(ServiceError::Internal(format!(
                "stored challenge of session {} has {} steps",
                s.id,
                challenge.steps.len()
            )));
        }
        Ok(Self {
            id: s.id,
            purpose,
            challenge,
            created_at: s.created_at,
            expires_at: s.expires_at,
            max_frames: MAX_SESSION_FRAMES,
            phase_timeout_secs: ChallengePolicy::default().phase_timeout.as_secs(),
            outcome: s.outcome,
        })
    }
}

impl FaceService {
    /// Creates a session for `purpose`, if the caller may use it and, for
    /// verify, the user exists.
    #[tracing::instrument(skip(self, caller))]
    pub async fn create_challenge_session(
        &self,
        caller: &Caller,
        purpose: SessionPurpose,
    ) -> Result<ChallengeSession, ServiceError> {
        let result = self.create_session_inner(caller, purpose).await;
        let user_id = match purpose {
            SessionPurpose::Verify { user_id } => Some(user_id),
            SessionPurpose::Enrol => None,
        };
        let outcome = match &result {
            Ok(_) => "created",
            Err(_) => "refused",
        };
        let detail = match &result {
            Ok(s) => Some(format!("session {}", s.id)),
            Err(e) => Some(e.kind().to_string()),
        };
        self.audit()
            .record(caller, "liveness_session", outcome, user_id, None, detail)
            .await;
        result
    }

    async fn create_session_inner(
        &self,
        caller: &Caller,
        purpose: SessionPurpose,
    ) -> Result<ChallengeSession, ServiceError> {
        let user_id = match purpose {
            SessionPurpose::Verify { user_id } => {
                caller.require(Scope::Recognize, "start a liveness session to verify")?;
                self.get_user(user_id).await?;
                Some(user_id)
            }
            SessionPurpose::Enrol => {
                caller.require(Scope::Enrol, "start a liveness session to enrol")?;
                None
            }
        };
        let mut id = [0u8; 16];
        getrandom::fill(&mut id)
            .map_err(|e| ServiceError::Internal(format!("no randomness for a session: {e}")))?;
        let challenge = Challenge::random()?;
        // Housekeeping on the way: long-expired sessions go (an indexed
        // range delete); failing it fails nothing.
        if let Err(e) = self
            .store()
            .purge_liveness_sessions(crate::sessions::PURGE_AFTER_SECS)
            .await
        {
            tracing::warn!(error = %e, "purging expired liveness sessions");
        }
        let stored = self
            .store()
            .create_liveness_session(NewLivenessSession {
                id: crate::access::hex(&id),
                purpose: match purpose {
                    SessionPurpose::Verify { .. } => "verify",
                    SessionPurpose::Enrol => "enrol",
                }
                .into(),
                user_id,
                key_id: caller.key_id,
                challenge: serde_json::to_value(&challenge)
                    .map_err(|e| ServiceError::Internal(format!("challenge to JSON: {e}")))?,
                ttl_secs: self.challenge_times().session_ttl_secs,
            })
            .await
            .map_err(|e| match user_id {
                Some(id) => for_user(id)(e),
                None => e.into(),
            })?;
        ChallengeSession::from_stored(stored)
    }

    /// Redeems a passed session's token once, for this key and, with
    /// `user_id`, a verify session about that user (`None`: an enrol
    /// session): what the token is bound to, or `LivenessTokenRefused`
    /// (used, expired, another key's, another user's or purpose's,
    /// unknown). One audit row either way (`liveness_token`, `redeemed`
    /// with the session, or `refused`); the store's conditional delete
    /// makes two redemptions of one token one success.
    pub(crate) async fn redeem_liveness_token(
        &self,
        caller: &Caller,
        token: &str,
        user_id: Option<i64>,
    ) -> Result<RedeemedToken, ServiceError> {
        let redeemed = self
            .store()
            .redeem_liveness_token(token_hash(token), caller.key_id, user_id)
            .await?;
        let (outcome, detail) = match &redeemed {
            Some(t) => ("redeemed", format!("session {}", t.session_id)),
            None => (
                "refused",
                ServiceError::LivenessTokenRefused.kind().to_string(),
            ),
        };
        self.audit()
            .record(
                caller,
                "liveness_token",
                outcome,
                user_id,
                None,
                Some(detail),
            )
            .await;
        redeemed.ok_or(ServiceError::LivenessTokenRefused)
    }

    /// A session, for the key that created it; `LivenessSessionNotFound`
    /// for anyone else, as for an id that does not exist.
    pub async fn challenge_session(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<ChallengeSession, ServiceError> {
        let not_found = || ServiceError::LivenessSessionNotFound(id.chars().take(64).collect());
        let stored = self
            .store()
            .liveness_session(id)
            .await?
            .ok_or_else(not_found)?;
        if stored.key_id != caller.key_id {
            return Err(not_found());
        }
        ChallengeSession::from_stored(stored)
    }
}
