//! Liveness challenge sessions as a use case: created with a random
//! head-turn challenge for one purpose (verify a user, or enrol), kept in
//! the store so that they outlive a restart and any instance can take the
//! answer, and visible only to the key that created them.
//!
//! This is the first use case of the challenge (issue 19): answering a
//! session with frames, its token and the token's redemption by verify
//! build on it.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use face_core::{DetectedFace, Embedding};
use face_store::liveness::{LivenessSession, NewLivenessSession, NewLivenessToken};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::access::{Caller, Scope};
use crate::challenge::{
    Challenge, ChallengePolicy, FrameFacts, Phase, SessionCheck, SessionFailure,
};
use crate::error::for_user;
use crate::lockout::Outcome;
use crate::thresholds::Thresholds;
use crate::{FaceService, ServiceError};

/// What the store keeps of a token: its SHA-256.
pub(crate) fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// How long a passed session's token may wait to be redeemed, seconds.
pub const TOKEN_TTL_SECS: u32 = 120;

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

/// How long a session may take to be answered, seconds.
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
        let challenge = serde_json::from_value(s.challenge).map_err(|e| {
            ServiceError::Internal(format!("stored challenge of session {}: {e}", s.id))
        })?;
        Ok(Self {
            id: s.id,
            purpose,
            challenge,
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
                ttl_secs: SESSION_TTL_SECS,
            })
            .await
            .map_err(|e| match user_id {
                Some(id) => for_user(id)(e),
                None => e.into(),
            })?;
        ChallengeSession::from_stored(stored)
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

impl FaceService {
    /// Answers a session with its frames, in order. The frames' client
    /// timestamps time the challenge's phases, but never for longer than
    /// the server has seen pass since the session was created; the
    /// session's expiry is the server's. A verify session is an attempt on
    /// the user's lockout: a failure counts as a failed verification.
    #[tracing::instrument(skip(self, caller, frames), fields(frames = frames.len()))]
    pub async fn answer_challenge_session(
        &self,
        caller: &Caller,
        id: &str,
        frames: Vec<SessionFrame>,
    ) -> Result<SessionResult, ServiceError> {
        // Every answer, refused or not, is counted and audited.
        let mut purpose = None;
        let result = self
            .answer_session_inner(caller, id, frames, &mut purpose)
            .await;
        let (outcome, reason) = match &result {
            Ok(r) if r.passed => ("passed", "none"),
            Ok(r) => ("failed", r.reason.map_or("unknown", SessionFailure::as_str)),
            Err(e) => ("refused", e.kind()),
        };
        let label = match purpose {
            Some(SessionPurpose::Verify { .. }) => "verify",
            Some(SessionPurpose::Enrol) => "enrol",
            None => "unknown",
        };
        crate::telemetry::session(label, outcome, reason);
        let detail = match outcome {
            "passed" => format!("session {id}"),
            _ => format!("session {id}: {reason}"),
        };
        let user_id = match purpose {
            Some(SessionPurpose::Verify { user_id }) => Some(user_id),
            _ => None,
        };
        // Nothing was done for a client that had gone: nothing to audit.
        if !matches!(result, Err(ServiceError::ClientGone)) {
            self.audit()
                .record(
                    caller,
                    "liveness_session",
                    outcome,
                    user_id,
                    None,
                    Some(detail),
                )
                .await;
        }
        result
    }

    async fn answer_session_inner(
        &self,
        caller: &Caller,
        id: &str,
        frames: Vec<SessionFrame>,
        purpose: &mut Option<SessionPurpose>,
    ) -> Result<SessionResult, ServiceError> {
        let session = self.challenge_session(caller, id).await?;
        *purpose = Some(session.purpose);
        if session.outcome.is_some() {
            return Err(ServiceError::Conflict(format!(
                "liveness session {id} was already answered; create a new one"
            )));
        }
        let user_id = match session.purpose {
            SessionPurpose::Verify { user_id } => Some(user_id),
            SessionPurpose::Enrol => None,
        };
        let attempt = match user_id {
            Some(user) => Some(self.lockouts().reserve(user).await?),
            None => None,
        };
        let judged = self.judge_session(caller, &session, frames).await;
        // Settled from what was written: a pass that lost the write (the
        // session expired meanwhile, or another answer won) clears no
        // failures.
        let result = match judged {
            Ok((verdict, frames)) => self.finish_session(&session, verdict, frames).await,
            Err(e) => Err(e),
        };
        let outcome = match &result {
            Ok(r) if r.passed => Outcome::Passed,
            Ok(r) if r.reason == Some(SessionFailure::Expired) && r.frames > 0 => Outcome::Released,
            Ok(_) => Outcome::Failed,
            Err(_) => Outcome::Released,
        };
        if let Some(attempt) = attempt {
            self.lockouts().settle(attempt, outcome).await?;
        }
        result
    }

    /// Writes the outcome (and a pass's token) once; a session that
    /// expired meanwhile, or was answered by another request, fails.
    async fn finish_session(
        &self,
        session: &ChallengeSession,
        verdict: Result<Embedding, SessionFailure>,
        frames: usize,
    ) -> Result<SessionResult, ServiceError> {
        let (reason, token) = match verdict {
            Ok(face) => {
                let mut secret = [0u8; 32];
                getrandom::fill(&mut secret).map_err(|e| {
                    ServiceError::Internal(format!("no randomness for a token: {e}"))
                })?;
                let token = format!("fglt_{}", crate::access::hex(&secret));
                let stored = NewLivenessToken {
                    token_hash: token_hash(&token),
                    model_id: face.model().id.clone(),
                    embedding: face.into_values(),
                    ttl_secs: TOKEN_TTL_SECS,
                };
                (None, Some((token, stored)))
            }
            Err(reason) => (Some(reason), None),
        };
        let code = reason.map_or("passed", SessionFailure::as_str);
        let (token, stored) = match token {
            Some((t, s)) => (Some(t), Some(s)),
            None => (None, None),
        };
        let written = self
            .store()
            .finish_liveness_session(&session.id, code, stored)
            .await?;
        if !written {
            return Ok(SessionResult {
                session_id: session.id.clone(),
                passed: false,
                reason: Some(SessionFailure::Expired),
                token: None,
                frames,
                pad_checked: self.liveness().passive_available(),
            });
        }
        Ok(SessionResult {
            session_id: session.id.clone(),
            passed: reason.is_none(),
            reason,
            token,
            frames,
            pad_checked: self.liveness().passive_available(),
        })
    }

    /// The frames against the session's rules: the face to bind a token
    /// to, or the failure; and how many frames were taken.
    async fn judge_session(
        &self,
        caller: &Caller,
        session: &ChallengeSession,
        frames: Vec<SessionFrame>,
    ) -> Result<(Result<Embedding, SessionFailure>, usize), ServiceError> {
        let n = frames.len();
        if chrono::Utc::now() >= session.expires_at {
            return Ok((Err(SessionFailure::Expired), 0));
        }
        if n > session.max_frames {
            return Ok((Err(SessionFailure::FrameLimit), 0));
        }
        if frames.windows(2).any(|w| w[1].client_ms <= w[0].client_ms) {
            return Err(ServiceError::Invalid {
                field: "frames",
                message: "the frames' timestamps must increase".into(),
            });
        }
        let created = session.expires_at - chrono::Duration::seconds(i64::from(SESSION_TTL_SECS));
        let served = (chrono::Utc::now() - created).to_std().unwrap_or_default();
        let first_ms = frames.first().map_or(0, |f| f.client_ms);
        let span = Duration::from_millis(frames.last().map_or(0, |f| f.client_ms) - first_ms);
        if span > served + Duration::from_secs(1) {
            return Err(ServiceError::Invalid {
                field: "frames",
                message: format!(
                    "the frames span {:.1} s, longer than the session has existed ({:.1} s)",
                    span.as_secs_f32(),
                    served.as_secs_f32()
                ),
            });
        }
        let pad = self.liveness().passive_available();
        let bytes: Vec<Vec<u8>> = frames.iter().map(|f| f.bytes.clone()).collect();
        let facts = self
            .workers()
            .run(
                move |p| {
                    bytes
                        .iter()
                        .enumerate()
                        .map(|(i, b)| frame_facts(p, b, pad && i % PAD_EVERY == 0))
                        .collect::<Result<Vec<_>, face_core::FaceError>>()
                },
                caller.probe.clone(),
            )
            .await??;
        let t0 = Instant::now();
        let mut check = SessionCheck::new(
            session.challenge.clone(),
            ChallengePolicy::default(),
            session.max_frames,
            t0,
        );
        for ((facts, score), frame) in facts.iter().zip(&frames) {
            let mut facts = facts.clone();
            facts.live = self.liveness().judge(score.is_some(), *score);
            let at = t0 + Duration::from_millis(frame.client_ms - first_ms);
            if let Err(failure) = check.frame(&facts, at) {
                return Ok((Err(failure), n));
            }
        }
        if check.pad_failed() {
            return Ok((Err(SessionFailure::Pad), n));
        }
        if check.phase() != Phase::Done {
            return Ok((Err(SessionFailure::StepTimeout), n));
        }
        // The frontal faces at the start and after each return: one person.
        let chosen: Vec<(Vec<u8>, DetectedFace)> = check
            .identity_frames()
            .iter()
            .filter_map(|&i| Some((frames[i].bytes.clone(), facts[i].0.face?)))
            .collect();
        // The passive check runs on every one of these frames too: they are
        // the only ones the identity checks see, so a print held up at all
        // the frontal moments must not pass unchecked.
        let scored = self
            .workers()
            .run(
                move |p| {
                    chosen
                        .iter()
                        .map(|(bytes, face)| {
                            let image = face_core::decode(bytes, &p.options().decode)?.image;
                            let live = match pad {
                                true => Some(p.live_score(&image, face)?),
                                false => None,
                            };
                            let mut faces = p.embed_faces(&image, std::slice::from_ref(face))?;
                            let embedding = faces.pop().map(|f| f.embedding).ok_or(
                                face_core::FaceError::Backend {
                                    backend: "service",
                                    message: "no embedding for a chosen face".into(),
                                },
                            )?;
                            Ok((embedding, live))
                        })
                        .collect::<Result<Vec<_>, face_core::FaceError>>()
                },
                caller.probe.clone(),
            )
            .await??;
        // Most of them, not any: each live frame is refused about one time
        // in twenty, and a print shown at only some of these moments leaves
        // the others to a live face, which the identity check then tells
        // apart.
        let attacks = scored
            .iter()
            .filter(|(_, live)| {
                self.liveness().judge(live.is_some(), *live)
                    == Some(crate::liveness::LivenessVerdict::Attack)
            })
            .count();
        if 2 * attacks > scored.len() {
            return Ok((Err(SessionFailure::Pad), n));
        }
        let embeddings: Vec<Embedding> = scored.into_iter().map(|(e, _)| e).collect();
        let Some(first) = embeddings.first() else {
            return Ok((Err(SessionFailure::Identity), n));
        };
        for other in &embeddings[1..] {
            if !self.same_person(first, other)? {
                return Ok((Err(SessionFailure::Identity), n));
            }
        }
        // One person throughout (above); that person must be the user: the
        // frontal face closest to their templates verifies at the verify
        // threshold for their number of templates, and is the face the
        // token is bound to.
        let mut bound = first.clone();
        if let SessionPurpose::Verify { user_id } = session.purpose {
            let mut best: Option<(f32, u64, &Embedding)> = None;
            for face in &embeddings {
                let nearest = self.nearest_of_user(user_id, face.values()).await?;
                if best.is_none_or(|(d, _, _)| nearest.distance < d) {
                    best = Some((nearest.distance, nearest.templates, face));
                }
            }
            let Some((distance, templates, face)) = best else {
                return Ok((Err(SessionFailure::Identity), n));
            };
            let threshold = self.thresholds().verify(templates).as_threshold();
            if !Thresholds::matches(distance, threshold) {
                return Ok((Err(SessionFailure::NotClaimedUser), n));
            }
            bound = face.clone();
        }
        Ok((Ok(bound), n))
    }
}

/// One frame's facts (the live verdict left for the caller) and, when
/// asked, the live score of its one face.
fn frame_facts(
    p: &mut face_core::FacePipeline,
    bytes: &[u8],
    pad: bool,
) -> Result<(FrameFacts, Option<f32>), face_core::FaceError> {
    let image = face_core::decode(bytes, &p.options().decode)?.image;
    let faces = p.detect_image(&image)?;
    let face = (faces.len() == 1).then(|| faces[0]);
    let score = match (&face, pad) {
        (Some(f), true) => Some(p.live_score(&image, f)?),
        _ => None,
    };
    Ok((
        FrameFacts {
            faces: faces.len(),
            face,
            digest: Sha256::digest(bytes).into(),
            live: None,
        },
        score,
    ))
}
