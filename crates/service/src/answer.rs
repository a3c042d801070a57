//! Answering a liveness challenge session, one frame at a time.
//!
//! A [`SessionAnswer`] is one answer in progress: the session, the
//! per-frame rules ([`SessionCheck`]), the lockout attempt a verify
//! session holds, and the faces seen at the frontal moments. Frames are fed
//! with the instant they were seen: the stream's challenge mode gives each
//! frame's arrival on the server's clock; the HTTP batch gives the frames'
//! own timestamps, which it bounds by the session's age on the server (so
//! a batch can be made offline within the session's minute; docs/liveness.md
//! says what that lets through, and why the stream is the stronger path).
//!
//! Each frame is one face-worker job (decode, detect, and the passive check
//! on every [`PAD_EVERY`]-th frame); a frame that becomes a frontal moment
//! is a second job on the same decoded image (the passive check, always,
//! and the embedding). The session ends on the first failure or when the
//! last return is made; only then are the identity checks made and the
//! outcome written, so nothing before the end tells the client how its
//! face or its print scored.
//!
//! Every answer, refused or not, is one audit row and one count of
//! `facegate_liveness_sessions_total`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use face_core::image::RgbImage;
use face_core::{BoundingBox, DetectedFace, Embedding};
use face_store::liveness::NewLivenessToken;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::access::Caller;
use crate::challenge::{ChallengePolicy, FrameFacts, Phase, SessionCheck, SessionFailure};
use crate::liveness::LivenessVerdict;
use crate::lockout::{Outcome, Reserved};
use crate::sessions::{
    token_hash, ChallengeSession, SessionFrame, SessionPurpose, SessionResult, PAD_EVERY,
};
use crate::thresholds::Thresholds;
use crate::{FaceService, ServiceError};

/// One answer in progress (see the module's documentation).
#[derive(Debug)]
pub struct SessionAnswer {
    session: ChallengeSession,
    check: SessionCheck,
    /// Verify sessions: the user's lockout attempt, settled at the end.
    attempt: Option<Reserved>,
    /// The faces at the frontal moments: embedding and live score.
    identity: Vec<(Embedding, Option<f32>)>,
    /// Frames taken (decoded and checked).
    frames: usize,
    /// Which frames the passive check runs on: those whose index has this
    /// remainder modulo [`PAD_EVERY`] (drawn per answer, so a client
    /// cannot tell which frames are checked).
    pad_offset: usize,
    finished: bool,
}

impl SessionAnswer {
    /// The session being answered.
    pub fn session(&self) -> &ChallengeSession {
        &self.session
    }

    /// Where the head is in the challenge.
    pub fn phase(&self) -> Phase {
        self.check.phase()
    }

    /// Frames taken so far.
    pub fn frames(&self) -> usize {
        self.frames
    }
}

/// Where an answer stands after one frame.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnswerProgress {
    /// The phase after the frame.
    #[serde(flatten)]
    pub phase: Phase,
    /// The frame's one face box, when it had exactly one.
    pub bbox: Option<BoundingBox>,
}

/// What one frame of an answer gave.
#[derive(Debug, Clone, PartialEq)]
pub enum AnswerStep {
    /// The challenge goes on.
    Progress(AnswerProgress),
    /// The session ended with this frame; the outcome is written.
    Finished(SessionResult),
}

impl FaceService {
    /// Starts answering session `id` (the caller's own, not answered yet).
    /// A verify session reserves one attempt of the user's lockout, which
    /// the end of the answer settles: a failed session is a failed
    /// verification.
    pub async fn begin_session_answer(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<SessionAnswer, ServiceError> {
        let mut purpose = None;
        let begun = self.begin_inner(caller, id, &mut purpose).await;
        if let Err(e) = &begun {
            self.record_answer(caller, id, purpose, Err(e)).await;
        }
        begun
    }

    async fn begin_inner(
        &self,
        caller: &Caller,
        id: &str,
        purpose: &mut Option<SessionPurpose>,
    ) -> Result<SessionAnswer, ServiceError> {
        let session = self.challenge_session(caller, id).await?;
        *purpose = Some(session.purpose);
        if session.outcome.is_some() {
            return Err(ServiceError::Conflict(format!(
                "liveness session {id} was already answered; create a new one"
            )));
        }
        let attempt = match session.purpose {
            SessionPurpose::Verify { user_id } => Some(self.lockouts().reserve(user_id).await?),
            SessionPurpose::Enrol => None,
        };
        let check = SessionCheck::new(
            session.challenge.clone(),
            ChallengePolicy::default(),
            session.max_frames,
            Instant::now(),
        );
        let mut draw = [0u8; 1];
        getrandom::fill(&mut draw)
            .map_err(|e| ServiceError::Internal(format!("no randomness for an answer: {e}")))?;
        Ok(SessionAnswer {
            session,
            check,
            attempt,
            identity: Vec::new(),
            frames: 0,
            pad_offset: usize::from(draw[0]) % PAD_EVERY,
            finished: false,
        })
    }

    /// Feeds one frame seen at `at`. An error (not a photo, busy workers)
    /// leaves the answer as it was: the caller may go on with the next
    /// frame or abandon the answer. After `Finished`, every frame is a
    /// `Conflict`.
    pub async fn session_frame(
        &self,
        caller: &Caller,
        answer: &mut SessionAnswer,
        bytes: Vec<u8>,
        at: Instant,
    ) -> Result<AnswerStep, ServiceError> {
        if answer.finished {
            return Err(ServiceError::Conflict(format!(
                "liveness session {} is already answered",
                answer.session.id
            )));
        }
        if chrono::Utc::now() >= answer.session.expires_at {
            return self
                .conclude(caller, answer, Err(SessionFailure::Expired))
                .await;
        }
        let pad = self.liveness().passive_available();
        let due = pad && answer.frames % PAD_EVERY == answer.pad_offset;
        let (facts, score, image) = self
            .workers()
            .run(move |p| frame_facts(p, &bytes, due), caller.probe.clone())
            .await??;
        let mut facts = facts;
        facts.live = self.liveness().judge(score.is_some(), score);
        // The frame is followed on a copy, kept only once everything it
        // needs has run: a failed second job leaves the answer as it was,
        // not with a frontal moment recorded and never embedded.
        let mut check = answer.check.clone();
        let moments = check.identity_frames().len();
        let phase = match check.frame(&facts, at) {
            Ok(phase) => phase,
            // A print held still times out; the passive check says why.
            Err(SessionFailure::StepTimeout) if check.pad_failed() => {
                answer.frames += 1;
                return self
                    .conclude(caller, answer, Err(SessionFailure::Pad))
                    .await;
            }
            Err(failure) => {
                answer.frames += 1;
                return self.conclude(caller, answer, Err(failure)).await;
            }
        };
        if check.identity_frames().len() > moments {
            let face = facts.face.ok_or_else(|| {
                ServiceError::Internal("a frontal moment without its face".into())
            })?;
            let scored = self
                .workers()
                .run(
                    move |p| moment(p, &image, &face, score, pad),
                    caller.probe.clone(),
                )
                .await??;
            answer.identity.push(scored);
        }
        answer.check = check;
        answer.frames += 1;
        if phase == Phase::Done {
            let verdict = match self.verdict(answer).await {
                Ok(verdict) => verdict,
                Err(e) => {
                    // Nothing decided (the user went, the store failed):
                    // the answer ends without an outcome.
                    self.release(caller, answer, &e).await;
                    return Err(e);
                }
            };
            return self.conclude(caller, answer, verdict).await;
        }
        Ok(AnswerStep::Progress(AnswerProgress {
            phase,
            bbox: facts.face.map(|f| f.bbox),
        }))
    }

    /// Ends an answer whose frames ran out before the challenge did (the
    /// HTTP batch): a step timeout, or `pad` when the passive check called
    /// most checked frames attacks.
    pub async fn end_session_answer(
        &self,
        caller: &Caller,
        mut answer: SessionAnswer,
    ) -> Result<SessionResult, ServiceError> {
        let failure = match answer.check.pad_failed() {
            true => SessionFailure::Pad,
            false => SessionFailure::StepTimeout,
        };
        match self.conclude(caller, &mut answer, Err(failure)).await? {
            AnswerStep::Finished(result) => Ok(result),
            AnswerStep::Progress(_) => Err(ServiceError::Internal(
                "an ended answer did not finish".into(),
            )),
        }
    }

    /// Gives up an answer that will not be finished (the stream closed or
    /// changed mode, a frame could not be read). Before the first turn is
    /// made nothing was learnt: the lockout attempt is released and the
    /// session stays open until it expires. After it, the session fails as
    /// `abandoned` (a failed attempt), so that quitting before a failure
    /// buys no free retries.
    pub async fn abandon_session_answer(
        &self,
        caller: &Caller,
        mut answer: SessionAnswer,
        why: &ServiceError,
    ) {
        if answer.finished {
            return;
        }
        let started = !matches!(
            answer.check.phase(),
            Phase::Start | Phase::Turning { step: 0 }
        );
        if started {
            if let Err(e) = self
                .conclude(caller, &mut answer, Err(SessionFailure::Abandoned))
                .await
            {
                tracing::warn!(error = %e, "failing an abandoned session");
            }
            return;
        }
        self.release(caller, &mut answer, why).await;
    }

    /// Ends an answer with no outcome: its attempt released, the refusal
    /// recorded.
    async fn release(&self, caller: &Caller, answer: &mut SessionAnswer, why: &ServiceError) {
        answer.finished = true;
        if let Some(attempt) = answer.attempt.take() {
            if let Err(e) = self.lockouts().settle(attempt, Outcome::Released).await {
                tracing::warn!(error = %e, "releasing an abandoned session's attempt");
            }
        }
        let id = answer.session.id.clone();
        self.record_answer(caller, &id, Some(answer.session.purpose), Err(why))
            .await;
    }

    /// Ends a stream's answer whose head has stopped coming: `step_timeout`
    /// (or `pad`) once the phase's time is up on the server's clock,
    /// `expired` once the session is; `None` while it may still go on.
    pub async fn session_deadline(
        &self,
        caller: &Caller,
        answer: &mut SessionAnswer,
        now: Instant,
    ) -> Option<Result<SessionResult, ServiceError>> {
        if answer.finished {
            return None;
        }
        let failure = if chrono::Utc::now() >= answer.session.expires_at {
            SessionFailure::Expired
        } else if answer.check.timed_out(now) {
            match answer.check.pad_failed() {
                true => SessionFailure::Pad,
                false => SessionFailure::StepTimeout,
            }
        } else {
            return None;
        };
        Some(match self.conclude(caller, answer, Err(failure)).await {
            Ok(AnswerStep::Finished(result)) => Ok(result),
            Ok(AnswerStep::Progress(_)) => Err(ServiceError::Internal(
                "an ended answer did not finish".into(),
            )),
            Err(e) => Err(e),
        })
    }

    /// The HTTP answer: the frames in order, timed by their own timestamps
    /// (which must increase, and span no longer than the session has
    /// existed on the server's clock).
    #[tracing::instrument(skip(self, caller, frames), fields(frames = frames.len()))]
    pub async fn answer_challenge_session(
        &self,
        caller: &Caller,
        id: &str,
        frames: Vec<SessionFrame>,
    ) -> Result<SessionResult, ServiceError> {
        let mut answer = self.begin_session_answer(caller, id).await?;
        if frames.len() > answer.session.max_frames {
            return match self
                .conclude(caller, &mut answer, Err(SessionFailure::FrameLimit))
                .await?
            {
                AnswerStep::Finished(r) => Ok(r),
                AnswerStep::Progress(_) => Err(ServiceError::Internal(
                    "a refused answer did not finish".into(),
                )),
            };
        }
        let first_ms = match batch_clock(&answer.session, &frames) {
            Ok(first) => first,
            Err(e) => {
                self.abandon_session_answer(caller, answer, &e).await;
                return Err(e);
            }
        };
        let t0 = Instant::now();
        for frame in frames {
            let at = t0 + Duration::from_millis(frame.client_ms - first_ms);
            match self
                .session_frame(caller, &mut answer, frame.bytes, at)
                .await
            {
                Ok(AnswerStep::Finished(result)) => return Ok(result),
                Ok(AnswerStep::Progress(_)) => {}
                Err(e) => {
                    self.abandon_session_answer(caller, answer, &e).await;
                    return Err(e);
                }
            }
        }
        self.end_session_answer(caller, answer).await
    }

    /// The identity checks at the end of a challenge that was met: the
    /// passive check over the frontal moments, one person throughout, and,
    /// for a verify session, that person is the user. The face to bind a
    /// token to, or the failure.
    async fn verdict(
        &self,
        answer: &SessionAnswer,
    ) -> Result<Result<Embedding, SessionFailure>, ServiceError> {
        if answer.check.pad_failed() {
            return Ok(Err(SessionFailure::Pad));
        }
        // Most of the frontal moments, not any: each live frame is refused
        // about one time in twenty, and a print shown at only some of these
        // moments leaves the others to a live face, which the identity
        // check then tells apart.
        let attacks = answer
            .identity
            .iter()
            .filter(|(_, live)| {
                self.liveness().judge(live.is_some(), *live) == Some(LivenessVerdict::Attack)
            })
            .count();
        let pad = self.liveness().passive_available();
        if pad && 2 * attacks > answer.identity.len() {
            return Ok(Err(SessionFailure::Pad));
        }
        // Every frontal moment embedded, or no decision on them (fail
        // closed; `session_frame` keeps the two in step).
        if answer.identity.len() != answer.check.identity_frames().len() {
            return Err(ServiceError::Internal(
                "a frontal moment of the session was not embedded".into(),
            ));
        }
        let embeddings: Vec<&Embedding> = answer.identity.iter().map(|(e, _)| e).collect();
        let Some(first) = embeddings.first() else {
            return Ok(Err(SessionFailure::Identity));
        };
        for other in &embeddings[1..] {
            if !self.same_person(first, other)? {
                return Ok(Err(SessionFailure::Identity));
            }
        }
        // One person throughout; that person must be the user: the frontal
        // face closest to their templates verifies at the verify threshold
        // for their number of templates, and is the face the token is bound
        // to.
        let SessionPurpose::Verify { user_id } = answer.session.purpose else {
            return Ok(Ok((*first).clone()));
        };
        // The token is bound to a face the passive check did not call an
        // attack.
        let bindable = answer.identity.iter().filter(|(_, live)| {
            self.liveness().judge(live.is_some(), *live) != Some(LivenessVerdict::Attack)
        });
        let mut best: Option<(f32, u64, &Embedding)> = None;
        for (face, _) in bindable {
            let nearest = self.nearest_of_user(user_id, face.values()).await?;
            if best.is_none_or(|(d, _, _)| nearest.distance < d) {
                best = Some((nearest.distance, nearest.templates, face));
            }
        }
        let Some((distance, templates, face)) = best else {
            return Ok(Err(SessionFailure::Identity));
        };
        let threshold = self.thresholds().verify(templates).as_threshold();
        if !Thresholds::matches(distance, threshold) {
            return Ok(Err(SessionFailure::NotClaimedUser));
        }
        Ok(Ok(face.clone()))
    }

    /// Writes the outcome (and a pass's token) once, settles the lockout
    /// from what was written, and records the answer. A session that
    /// expired meanwhile, or was answered by another request, fails as
    /// `expired` and counts nothing.
    async fn conclude(
        &self,
        caller: &Caller,
        answer: &mut SessionAnswer,
        verdict: Result<Embedding, SessionFailure>,
    ) -> Result<AnswerStep, ServiceError> {
        answer.finished = true;
        let id = answer.session.id.clone();
        let result = self.write_outcome(answer, verdict).await;
        let outcome = match &result {
            Ok(r) if r.passed => Outcome::Passed,
            // Answered after it expired: the client let the minute pass (a
            // batch made offline, say), which counts; expired while it was
            // being answered: nothing was decided.
            Ok(r) if r.reason == Some(SessionFailure::Expired) && answer.frames > 0 => {
                Outcome::Released
            }
            Ok(_) => Outcome::Failed,
            Err(_) => Outcome::Released,
        };
        // A pass is written: losing the lockout's update must not lose the
        // token or the audit row.
        if let Some(attempt) = answer.attempt.take() {
            if let Err(e) = self.lockouts().settle(attempt, outcome).await {
                tracing::warn!(error = %e, "settling a session's lockout attempt");
            }
        }
        self.record_answer(caller, &id, Some(answer.session.purpose), result.as_ref())
            .await;
        result.map(AnswerStep::Finished)
    }

    async fn write_outcome(
        &self,
        answer: &SessionAnswer,
        verdict: Result<Embedding, SessionFailure>,
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
                    ttl_secs: self.challenge_times().token_ttl_secs,
                };
                (None, Some((token, stored)))
            }
            Err(reason) => (Some(reason), None),
        };
        let code = reason.map_or("passed", SessionFailure::as_str);
        let (token, stored) = token.unzip();
        let written = self
            .store()
            .finish_liveness_session(&answer.session.id, code, stored)
            .await?;
        let (reason, token) = match written {
            true => (reason, token),
            false => (Some(SessionFailure::Expired), None),
        };
        Ok(SessionResult {
            session_id: answer.session.id.clone(),
            passed: reason.is_none(),
            reason,
            token,
            frames: answer.frames,
            pad_checked: self.liveness().passive_available(),
        })
    }

    /// One audit row and one count for an answer's end.
    async fn record_answer(
        &self,
        caller: &Caller,
        id: &str,
        purpose: Option<SessionPurpose>,
        result: Result<&SessionResult, &ServiceError>,
    ) {
        let (outcome, reason) = match result {
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
}

/// The first frame's timestamp, once the batch's timestamps are checked:
/// increasing, and spanning no longer than the session has existed.
fn batch_clock(session: &ChallengeSession, frames: &[SessionFrame]) -> Result<u64, ServiceError> {
    if frames.windows(2).any(|w| w[1].client_ms <= w[0].client_ms) {
        return Err(ServiceError::Invalid {
            field: "frames",
            message: "the frames' timestamps must increase".into(),
        });
    }
    let served = (chrono::Utc::now() - session.created_at)
        .to_std()
        .unwrap_or_default();
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
    Ok(first_ms)
}

/// One frame's facts (the live verdict left for the caller), the live
/// score of its one face when `pad`, and the decoded image for a second
/// job.
fn frame_facts(
    p: &mut face_core::FacePipeline,
    bytes: &[u8],
    pad: bool,
) -> Result<(FrameFacts, Option<f32>, Arc<RgbImage>), face_core::FaceError> {
    let image = face_core::decode(bytes, &p.options().decode)?.image;
    let faces = p.detect_image(&image)?;
    let face = (faces.len() == 1).then(|| faces[0]);
    let score = match (&face, pad) {
        (Some(f), true) => Some(p.live_score(&image, f)?),
        _ => None,
    };
    let facts = FrameFacts {
        faces: faces.len(),
        face,
        digest: Sha256::digest(bytes).into(),
        live: None,
    };
    Ok((facts, score, Arc::new(image)))
}

/// A frontal moment's face: its embedding, and its live score (`scored`
/// when the frame's job already has it; else scored now when `pad`).
fn moment(
    p: &mut face_core::FacePipeline,
    image: &RgbImage,
    face: &DetectedFace,
    scored: Option<f32>,
    pad: bool,
) -> Result<(Embedding, Option<f32>), face_core::FaceError> {
    let live = match (scored, pad) {
        (Some(s), _) => Some(s),
        (None, true) => Some(p.live_score(image, face)?),
        (None, false) => None,
    };
    let mut faces = p.embed_faces(image, std::slice::from_ref(face))?;
    let embedding = faces
        .pop()
        .map(|f| f.embedding)
        .ok_or(face_core::FaceError::Backend {
            backend: "service",
            message: "no embedding for a chosen face".into(),
        })?;
    Ok((embedding, live))
}
