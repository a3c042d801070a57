//! The stream use case: one frame of a camera stream in, who is in it out.
//!
//! A [`StreamSession`] is one connection's state: its mode, face-core's
//! tracker, and each track's recognition history (`track_identity`). The
//! server keeps one per connection and hands it to
//! [`FaceService::stream_frame`] with each frame it processes, one frame at
//! a time (the connection's "latest frame wins" mailbox is the server's).
//!
//! Every frame is decoded and detected on a face worker; the tracker says
//! which face is which; only the tracks that are due a recognition (new,
//! or clearly closer than before, within their budget) have their faces
//! embedded, in a second job on the decoded frame, and searched. A track's
//! identity is decided from its history, and each decision, not each
//! frame, is one identification: counted in the metrics, written to the
//! audit log, and, when it is `unknown`, one failed identification of the
//! caller's budget.
//!
//! Streams together hold at most `max_workers` face workers (a semaphore
//! taken before a frame's jobs are queued), so the HTTP requests always
//! find the others and are never queued behind more than that many frames.

use std::collections::HashMap;
use std::sync::Arc;

use face_core::image::RgbImage;
use face_core::track::{TrackId, Tracker, TrackerConfig};
use face_core::{decode, BoundingBox, DetectedFace, Landmarks};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::access::{Caller, Scope};
use crate::lockout::{Outcome, Reserved};
use crate::thresholds::Thresholds;
use crate::track_identity::{Attempt, RecognitionPolicy, TrackIdentity, TrackRecognition};
use crate::{telemetry, FaceService, ServiceError};

/// What a stream is for; as JSON `{"mode": "identify"}`,
/// `{"mode": "verify", "user_id": 42}`, `{"mode": "detect"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum StreamMode {
    /// Boxes and tracks only (enrolment previews): `enrol` or `recognize`.
    Detect,
    /// Who each track is: `recognize`.
    Identify,
    /// Whether each track is this user (continuous verification):
    /// `recognize`. Each track's decision is one verification, under the
    /// user's lockout.
    Verify {
        /// The claimed user.
        user_id: i64,
    },
}

/// One connection's state between frames.
#[derive(Debug)]
pub struct StreamSession {
    mode: StreamMode,
    tracker: Tracker,
    tracks: HashMap<TrackId, TrackEntry>,
    /// Frames processed so far.
    frames: u64,
}

#[derive(Debug, Default)]
struct TrackEntry {
    recognition: TrackRecognition,
    name: Option<String>,
    /// Verify mode: the lockout attempt the track's decision settles.
    reservation: Option<Reserved>,
    /// Verify mode: the user's lockout admitted no attempt.
    locked: bool,
}

impl StreamSession {
    /// A new stream in `mode`, if the caller may use it.
    pub fn new(caller: &Caller, mode: StreamMode) -> Result<Self, ServiceError> {
        match mode {
            StreamMode::Identify => {
                caller.require(Scope::Recognize, "identify faces in a stream")?
            }
            StreamMode::Verify { .. } => {
                caller.require(Scope::Recognize, "verify faces in a stream")?
            }
            StreamMode::Detect => {
                if !caller.allows(Scope::Enrol) {
                    caller.require(Scope::Recognize, "detect faces in a stream")?;
                }
            }
        }
        Ok(Self {
            mode,
            tracker: Tracker::new(TrackerConfig::default()),
            tracks: HashMap::new(),
            frames: 0,
        })
    }

    /// The mode.
    pub fn mode(&self) -> StreamMode {
        self.mode
    }
}

/// A track's state as a frame's event reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum TrackState {
    /// Detect mode: tracked, never recognised.
    Detected,
    /// Not decided yet.
    Tentative,
    /// Decided: this user.
    Identified {
        /// The user.
        user_id: i64,
        /// Their display name.
        name: String,
    },
    /// Decided: nobody enrolled.
    Unknown,
    /// Verify mode, decided: the claimed user.
    Verified {
        /// The user.
        user_id: i64,
    },
    /// Verify mode, decided: not the claimed user.
    NotVerified,
    /// Verify mode: the claimed user's lockout admits no attempt now.
    Locked,
}

/// One face of a processed frame.
#[derive(Debug, Clone, Serialize)]
pub struct StreamFace {
    /// Its track.
    pub track_id: TrackId,
    /// The box, in the frame's pixels.
    pub bbox: BoundingBox,
    /// The five landmarks.
    pub landmarks: Landmarks,
    /// The track's state after this frame.
    #[serde(flatten)]
    pub state: TrackState,
}

/// What one frame gave.
#[derive(Debug, Clone, Serialize)]
pub struct StreamFrame {
    /// The faces, largest first.
    pub faces: Vec<StreamFace>,
    /// Tracks that ended with this frame.
    pub ended: Vec<TrackId>,
    /// Faces embedded and searched for this frame (the others were only
    /// detected and tracked).
    pub recognised: usize,
}

/// The streams' settings in the service.
#[derive(Debug, Clone)]
pub struct Streams {
    /// Face workers all streams together may hold.
    pub(crate) slots: Arc<Semaphore>,
    /// When tracks are recognised and decided.
    pub(crate) policy: RecognitionPolicy,
}

impl Streams {
    /// At most `max_workers` face workers for all streams (at least one).
    pub fn new(max_workers: usize, policy: RecognitionPolicy) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(max_workers.max(1))),
            policy,
        }
    }
}

impl FaceService {
    /// The mode a new stream starts in: identification for a key that may
    /// recognise, unless the operator requires liveness (which the stream
    /// cannot check yet); detection otherwise.
    pub fn initial_stream_mode(&self, caller: &Caller) -> StreamMode {
        let liveness_free = self.liveness().required() == crate::LivenessMode::Off;
        if caller.allows(Scope::Recognize) && liveness_free {
            StreamMode::Identify
        } else {
            StreamMode::Detect
        }
    }

    /// A new stream session in `mode`, if the caller may use it and, for
    /// verify mode, the user exists.
    pub async fn stream_session(
        &self,
        caller: &Caller,
        mode: StreamMode,
    ) -> Result<StreamSession, ServiceError> {
        let session = StreamSession::new(caller, mode)?;
        // Stream recognition does not check liveness (yet): where the
        // operator requires it, streams only detect.
        let recognises = !matches!(mode, StreamMode::Detect);
        let required = self.liveness().required();
        if recognises && required != crate::LivenessMode::Off {
            return Err(ServiceError::LivenessUnavailable(format!(
                "recognition over the stream does not check liveness, and \
                 security.require_liveness is \"{}\": verify and identify with photos \
                 (POST /users/{{id}}/verify, POST /recognize/)",
                required.as_str()
            )));
        }
        if let StreamMode::Verify { user_id } = mode {
            self.get_user(user_id).await?;
        }
        Ok(session)
    }

    /// Processes one frame (a JPEG, or any photo format the decoder takes)
    /// of a stream. A frame that is not a photo is `BadImage` and leaves
    /// the session as it was.
    #[tracing::instrument(skip_all, fields(mode = ?session.mode))]
    pub async fn stream_frame(
        &self,
        caller: &Caller,
        session: &mut StreamSession,
        frame: Vec<u8>,
    ) -> Result<StreamFrame, ServiceError> {
        let streams = self.streams();
        let _slot = Arc::clone(&streams.slots)
            .acquire_owned()
            .await
            .map_err(|_| ServiceError::Internal("stream slots closed".into()))?;
        let (image, faces) = self
            .workers()
            .run(
                move |p| -> Result<_, face_core::FaceError> {
                    let decoded = decode(&frame, &p.options().decode)?;
                    let faces = p.detect_image(&decoded.image)?;
                    Ok((Arc::new(decoded.image), faces))
                },
                caller.probe.clone(),
            )
            .await??;
        let boxes: Vec<BoundingBox> = faces.iter().map(|f| f.bbox).collect();
        let update = session.tracker.update(&boxes);
        session.frames += 1;
        let frame_number = session.frames;
        for id in &update.ended {
            if let Some(entry) = session.tracks.remove(id) {
                self.end_track(caller, session.mode, entry).await?;
            }
        }
        let policy = streams.policy;
        let mut due: Vec<usize> = match session.mode {
            StreamMode::Detect => Vec::new(),
            StreamMode::Identify | StreamMode::Verify { .. } => update
                .assignments
                .iter()
                .enumerate()
                .filter(|(i, a)| {
                    let entry = session.tracks.entry(a.track_id).or_default();
                    !entry.locked
                        && entry
                            .recognition
                            .wants(boxes[*i].area(), frame_number, &policy)
                })
                .map(|(i, _)| i)
                .collect(),
        };
        // The largest faces first (the detector's order), as many as an
        // HTTP identification searches.
        due.truncate(self.max_faces_per_request());
        if !due.is_empty() && session.mode == StreamMode::Identify {
            // A spent budget of failed identifications stops the searches
            // (the frame is answered with the error), as it refuses
            // `POST /recognize/`.
            self.identify_budget_check(caller).await?;
        }
        if !due.is_empty() {
            self.recognise(caller, session, &update.assignments, &faces, &due, image)
                .await?;
        }
        let faces = faces
            .iter()
            .zip(&update.assignments)
            .map(|(face, a)| StreamFace {
                track_id: a.track_id,
                bbox: face.bbox,
                landmarks: face.landmarks,
                state: match session.mode {
                    StreamMode::Detect => TrackState::Detected,
                    StreamMode::Identify | StreamMode::Verify { .. } => session
                        .tracks
                        .get(&a.track_id)
                        .map_or(TrackState::Tentative, |e| state_of(e, session.mode)),
                },
            })
            .collect();
        Ok(StreamFrame {
            faces,
            ended: update.ended,
            recognised: due.len(),
        })
    }

    /// [`FaceService::session_frame`] for a stream's challenge mode, timed
    /// by the frame's arrival on this server's clock; the frame holds one
    /// of the streams' face workers, like any stream frame.
    pub async fn stream_session_frame(
        &self,
        caller: &Caller,
        answer: &mut crate::answer::SessionAnswer,
        frame: Vec<u8>,
        arrived: std::time::Instant,
    ) -> Result<crate::answer::AnswerStep, ServiceError> {
        let _slot = Arc::clone(&self.streams().slots)
            .acquire_owned()
            .await
            .map_err(|_| ServiceError::Internal("stream slots closed".into()))?;
        self.session_frame(caller, answer, frame, arrived).await
    }

    /// Ends a stream: each of its tracks as if it had ended (see
    /// [`FaceService::stream_frame`]). A session replaced by a mode change
    /// or dropped with its connection must go through here, or its
    /// undecided tracks would be free searches.
    pub async fn end_stream(
        &self,
        caller: &Caller,
        session: StreamSession,
    ) -> Result<(), ServiceError> {
        for (_, entry) in session.tracks {
            self.end_track(caller, session.mode, entry).await?;
        }
        Ok(())
    }

    /// A track that ended: a verification it did not decide is released (it
    /// counts for nothing); an identification it did not decide after at
    /// least one search counts as failed, like one that was decided
    /// unknown, so ending tracks early (leaving the frame, switching modes)
    /// buys no free searches.
    async fn end_track(
        &self,
        caller: &Caller,
        mode: StreamMode,
        entry: TrackEntry,
    ) -> Result<(), ServiceError> {
        if let Some(r) = entry.reservation {
            self.lockouts().settle(r, Outcome::Released).await?;
        }
        let undecided = entry.recognition.identity() == TrackIdentity::Tentative;
        if mode == StreamMode::Identify && undecided && entry.recognition.attempts() > 0 {
            self.identify_budget_failed(caller).await;
        }
        Ok(())
    }

    /// Embeds the faces at `due`, searches each, and records the attempts;
    /// every decision it reaches is one identification.
    async fn recognise(
        &self,
        caller: &Caller,
        session: &mut StreamSession,
        assignments: &[face_core::track::Assignment],
        faces: &[DetectedFace],
        due: &[usize],
        image: Arc<RgbImage>,
    ) -> Result<(), ServiceError> {
        let chosen: Vec<DetectedFace> = due.iter().map(|&i| faces[i]).collect();
        let embedded = self
            .workers()
            .run(
                move |p| p.embed_faces(&image, &chosen),
                caller.probe.clone(),
            )
            .await??;
        if let StreamMode::Verify { user_id } = session.mode {
            return self
                .verify_tracks(caller, session, user_id, assignments, faces, due, &embedded)
                .await;
        }
        let threshold = self
            .identify_default(self.gallery_templates().await?)
            .as_threshold();
        let policy = self.streams().policy;
        for (&i, face) in due.iter().zip(&embedded) {
            let best = self
                .search(face.embedding.values(), 1)
                .await?
                .into_iter()
                .next()
                .filter(|m| Thresholds::matches(m.distance, threshold));
            let track_id = assignments[i].track_id;
            let entry = session.tracks.entry(track_id).or_default();
            let attempt = Attempt {
                area: faces[i].bbox.area(),
                matched: best.as_ref().map(|m| m.user_id),
            };
            let Some(decided) = entry.recognition.record(attempt, session.frames, &policy) else {
                continue;
            };
            let (outcome, user_id) = match decided {
                TrackIdentity::Identified { user_id } => {
                    entry.name = best.map(|m| m.name);
                    ("match", Some(user_id))
                }
                TrackIdentity::Unknown => {
                    self.identify_budget_failed(caller).await;
                    ("no_match", None)
                }
                TrackIdentity::Tentative => continue,
            };
            self.stream_decision(caller, "stream_identify", outcome, user_id)
                .await;
        }
        Ok(())
    }
}

impl FaceService {
    /// One track's decision: counted and audited once.
    async fn stream_decision(
        &self,
        caller: &Caller,
        operation: &'static str,
        outcome: &'static str,
        user_id: Option<i64>,
    ) {
        metrics::counter!(telemetry::DECISIONS, "operation" => operation, "outcome" => outcome)
            .increment(1);
        self.audit()
            .record(caller, operation, outcome, user_id, None, None)
            .await;
    }

    /// Verify mode: compares the faces at `due` with the claimed user's
    /// templates. A track reserves one attempt of the user's lockout before
    /// its first comparison and settles it when decided (passed or failed)
    /// or when it ends undecided (released): one verification per track,
    /// however many frames it was compared on.
    #[allow(clippy::too_many_arguments)]
    async fn verify_tracks(
        &self,
        caller: &Caller,
        session: &mut StreamSession,
        user_id: i64,
        assignments: &[face_core::track::Assignment],
        faces: &[DetectedFace],
        due: &[usize],
        embedded: &[face_core::AnalyzedFace],
    ) -> Result<(), ServiceError> {
        let policy = self.streams().policy;
        for (&i, face) in due.iter().zip(embedded) {
            let entry = session.tracks.entry(assignments[i].track_id).or_default();
            if entry.reservation.is_none() {
                match self.lockouts().reserve(user_id).await {
                    Ok(r) => entry.reservation = Some(r),
                    Err(
                        ServiceError::VerificationDelayed { .. }
                        | ServiceError::VerificationDisabled(_),
                    ) => {
                        entry.locked = true;
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
            let nearest = self
                .nearest_of_user(user_id, face.embedding.values())
                .await?;
            let threshold = self.thresholds().verify(nearest.templates).as_threshold();
            let attempt = Attempt {
                area: faces[i].bbox.area(),
                matched: Thresholds::matches(nearest.distance, threshold).then_some(user_id),
            };
            let Some(decided) = entry.recognition.record(attempt, session.frames, &policy) else {
                continue;
            };
            let (outcome, settled) = match decided {
                TrackIdentity::Identified { .. } => ("match", Outcome::Passed),
                TrackIdentity::Unknown => ("no_match", Outcome::Failed),
                TrackIdentity::Tentative => continue,
            };
            if let Some(r) = entry.reservation.take() {
                self.lockouts().settle(r, settled).await?;
            }
            self.stream_decision(caller, "stream_verify", outcome, Some(user_id))
                .await;
        }
        Ok(())
    }
}

fn state_of(entry: &TrackEntry, mode: StreamMode) -> TrackState {
    let verifying = matches!(mode, StreamMode::Verify { .. });
    match (entry.recognition.identity(), verifying) {
        _ if entry.locked => TrackState::Locked,
        (TrackIdentity::Tentative, _) => TrackState::Tentative,
        (TrackIdentity::Unknown, false) => TrackState::Unknown,
        (TrackIdentity::Unknown, true) => TrackState::NotVerified,
        (TrackIdentity::Identified { user_id }, true) => TrackState::Verified { user_id },
        (TrackIdentity::Identified { user_id }, false) => TrackState::Identified {
            user_id,
            name: entry.name.clone().unwrap_or_default(),
        },
    }
}
