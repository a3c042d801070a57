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
use crate::thresholds::Thresholds;
use crate::track_identity::{Attempt, RecognitionPolicy, TrackIdentity, TrackRecognition};
use crate::{telemetry, FaceService, ServiceError};

/// What a stream is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamMode {
    /// Boxes and tracks only (enrolment previews): `enrol` or `recognize`.
    Detect,
    /// Who each track is: `recognize`.
    Identify,
}

/// One connection's state between frames.
#[derive(Debug, Clone)]
pub struct StreamSession {
    mode: StreamMode,
    tracker: Tracker,
    tracks: HashMap<TrackId, TrackEntry>,
    /// Frames processed so far.
    frames: u64,
}

#[derive(Debug, Clone, Default)]
struct TrackEntry {
    recognition: TrackRecognition,
    name: Option<String>,
}

impl StreamSession {
    /// A new stream in `mode`, if the caller may use it.
    pub fn new(caller: &Caller, mode: StreamMode) -> Result<Self, ServiceError> {
        match mode {
            StreamMode::Identify => {
                caller.require(Scope::Recognize, "identify faces in a stream")?
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
            session.tracks.remove(id);
        }
        let policy = streams.policy;
        let due: Vec<usize> = match session.mode {
            StreamMode::Detect => Vec::new(),
            StreamMode::Identify => update
                .assignments
                .iter()
                .enumerate()
                .filter(|(i, a)| {
                    session
                        .tracks
                        .entry(a.track_id)
                        .or_default()
                        .recognition
                        .wants(boxes[*i].area(), frame_number, &policy)
                })
                .map(|(i, _)| i)
                .collect(),
        };
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
                    StreamMode::Identify => session
                        .tracks
                        .get(&a.track_id)
                        .map_or(TrackState::Tentative, state_of),
                },
            })
            .collect();
        Ok(StreamFrame {
            faces,
            ended: update.ended,
            recognised: due.len(),
        })
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
                    self.identify_budget().failed(caller);
                    ("no_match", None)
                }
                TrackIdentity::Tentative => continue,
            };
            metrics::counter!(
                telemetry::DECISIONS,
                "operation" => "stream_identify",
                "outcome" => outcome
            )
            .increment(1);
            self.audit()
                .record(caller, "stream_identify", outcome, user_id, None, None)
                .await;
        }
        Ok(())
    }
}

fn state_of(entry: &TrackEntry) -> TrackState {
    match entry.recognition.identity() {
        TrackIdentity::Tentative => TrackState::Tentative,
        TrackIdentity::Unknown => TrackState::Unknown,
        TrackIdentity::Identified { user_id } => TrackState::Identified {
            user_id,
            name: entry.name.clone().unwrap_or_default(),
        },
    }
}
