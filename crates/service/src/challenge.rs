//! The head-turn challenge: a random sequence of turns the person in front
//! of the camera must make, and the state machine that follows their head
//! through it, frame by frame.
//!
//! Pure: yaw ratios (face-core's `pose::yaw_ratio`, about 0.5 frontal) and
//! a clock in, the phase or a failure out. The session around it
//! (one face, the track, repeated frames, PAD, identity) is the caller's.
//!
//! Directions are the person's own: `TurnLeft` is their left, so in an
//! unmirrored camera frame the nose moves towards the image's *right* and
//! the ratio rises. Each turn must be followed by a return to frontal, and
//! the thresholds have hysteresis (turned beyond ±0.14 of 0.5, frontal
//! again within ±0.10), so a head hovering at the edge does not count twice.
//! A turn must also move the ratio at least 0.12 from the head's own
//! frontal baseline (the frontal frames before the turn): the landmarks of
//! one still photo, shifted and re-encoded, wander by ±0.04 (measured on
//! the shared spoof samples: 0.35–0.43 for one, 0.58–0.67 for another),
//! enough to cross a threshold the photo sits near, never enough to move
//! that far from where it sits.
//! Every phase has a time limit on the clock it is given. The HTTP answer
//! gives it the frames' own timestamps, which the service only bounds by
//! the session's age on the server: a batch of frames can be made offline
//! within the session's minute (docs/liveness.md says what that lets
//! through).

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::ServiceError;

/// One step of a challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Turn {
    /// The person's left (the nose towards the image's right).
    TurnLeft,
    /// The person's right (the nose towards the image's left).
    TurnRight,
}

impl Turn {
    fn other(self) -> Turn {
        match self {
            Turn::TurnLeft => Turn::TurnRight,
            Turn::TurnRight => Turn::TurnLeft,
        }
    }
}

/// How a yaw ratio is read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChallengePolicy {
    /// A head is turned when `|r − 0.5|` exceeds this (0.14: the clips'
    /// annotation, r < 0.36 or r > 0.64).
    pub turned_beyond: f32,
    /// And frontal again within this (0.10: r in 0.40..=0.60).
    pub frontal_within: f32,
    /// And moved at least this far from the frontal baseline (0.12).
    pub min_displacement: f32,
    /// The longest one phase (the first frontal face, a turn, a return)
    /// may take.
    pub phase_timeout: Duration,
}

impl Default for ChallengePolicy {
    fn default() -> Self {
        Self {
            turned_beyond: 0.14,
            frontal_within: 0.10,
            min_displacement: 0.12,
            phase_timeout: Duration::from_secs(8),
        }
    }
}

/// The steps drawn for one session: two or three turns, alternating, from a
/// random first direction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    /// The turns, in order.
    pub steps: Vec<Turn>,
}

impl Challenge {
    /// A challenge drawn from the operating system's randomness.
    pub fn random() -> Result<Self, ServiceError> {
        let mut byte = [0u8; 1];
        getrandom::fill(&mut byte)
            .map_err(|e| ServiceError::Internal(format!("no randomness for a challenge: {e}")))?;
        Ok(Self::from_bits(byte[0]))
    }

    /// The challenge of two random bits: the first direction and the
    /// number of steps.
    pub fn from_bits(bits: u8) -> Self {
        let first = if bits & 1 == 0 {
            Turn::TurnLeft
        } else {
            Turn::TurnRight
        };
        let len = if bits & 2 == 0 { 2 } else { 3 };
        let steps = (0..len)
            .map(|i| if i % 2 == 0 { first } else { first.other() })
            .collect();
        Self { steps }
    }
}

/// Where a session's head is in its challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    /// Waiting for a frontal face to start from.
    Start,
    /// Waiting for turn `step` (0-based).
    Turning {
        /// The step.
        step: usize,
    },
    /// Turn `step` made; waiting for the return to frontal.
    Returning {
        /// The step.
        step: usize,
    },
    /// Every step made and returned from.
    Done,
}

/// Why a challenge failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChallengeFailure {
    /// The head turned the other way than the step asked.
    WrongDirection,
    /// A phase took longer than the policy allows.
    StepTimeout,
}

/// One session's progress through its challenge.
#[derive(Debug, Clone)]
pub struct ChallengeProgress {
    challenge: Challenge,
    policy: ChallengePolicy,
    phase: Phase,
    since: Instant,
    /// Where the head sits when frontal, before the turn being waited for.
    baseline: f32,
}

impl ChallengeProgress {
    /// Starts `challenge` at `now`.
    pub fn new(challenge: Challenge, policy: ChallengePolicy, now: Instant) -> Self {
        Self {
            challenge,
            policy,
            phase: Phase::Start,
            since: now,
            baseline: 0.5,
        }
    }

    /// The phase now.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The challenge.
    pub fn challenge(&self) -> &Challenge {
        &self.challenge
    }

    /// Which way `r` is turned, if beyond the policy's limit and far
    /// enough from the baseline.
    fn turned(&self, r: f32) -> Option<Turn> {
        let moved = (r - self.baseline).abs() >= self.policy.min_displacement;
        if r > 0.5 + self.policy.turned_beyond && moved {
            Some(Turn::TurnLeft)
        } else if r < 0.5 - self.policy.turned_beyond && moved {
            Some(Turn::TurnRight)
        } else {
            None
        }
    }

    fn frontal(&self, r: f32) -> bool {
        (r - 0.5).abs() <= self.policy.frontal_within
    }

    fn enter(&mut self, phase: Phase, now: Instant) {
        self.phase = phase;
        self.since = now;
    }

    /// Whether the phase's time is up at `now` (never once done).
    pub fn timed_out(&self, now: Instant) -> bool {
        self.phase != Phase::Done
            && now.saturating_duration_since(self.since) > self.policy.phase_timeout
    }

    /// Follows one frame's yaw ratio `r` seen at `now` (the server's
    /// clock). A failure is final: the caller ends the session.
    pub fn observe(&mut self, r: f32, now: Instant) -> Result<Phase, ChallengeFailure> {
        if self.phase == Phase::Done {
            return Ok(Phase::Done);
        }
        if self.timed_out(now) {
            return Err(ChallengeFailure::StepTimeout);
        }
        let steps = &self.challenge.steps;
        match self.phase {
            Phase::Start => {
                if self.frontal(r) {
                    self.baseline = r;
                    self.enter(Phase::Turning { step: 0 }, now);
                }
            }
            Phase::Turning { step } => match self.turned(r) {
                Some(t) if t == steps[step] => self.enter(Phase::Returning { step }, now),
                Some(_) => return Err(ChallengeFailure::WrongDirection),
                // Frontal frames while waiting refine where the head sits
                // (a running mean, so one noisy frame moves it little).
                None if self.frontal(r) => self.baseline = 0.75 * self.baseline + 0.25 * r,
                None => {}
            },
            Phase::Returning { step } => {
                if self.frontal(r) {
                    let next = match step + 1 < steps.len() {
                        true => Phase::Turning { step: step + 1 },
                        false => Phase::Done,
                    };
                    self.baseline = r;
                    self.enter(next, now);
                } else if self.turned(r) == Some(steps[step].other()) {
                    // Swung through frontal to the other side without a
                    // frontal frame: not the return each step asks for.
                    return Err(ChallengeFailure::WrongDirection);
                }
            }
            Phase::Done => {}
        }
        Ok(self.phase)
    }
}

/// Why a liveness session failed: the reason code its answer and audit
/// row carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionFailure {
    /// A frame without a face.
    NoFace,
    /// A frame with more than one face.
    MultipleFaces,
    /// The face jumped between frames (another face, a cut).
    TrackLost,
    /// A frame sent twice.
    RepeatedFrame,
    /// A turn the other way than the step asked.
    WrongDirection,
    /// A phase took too long.
    StepTimeout,
    /// Most of the checked frames scored as a presentation attack.
    Pad,
    /// The frontal frames are not all one person.
    Identity,
    /// The person is not the user the session is for.
    NotClaimedUser,
    /// The session expired before it was answered.
    Expired,
    /// More frames than a session takes, or the frames ended before the
    /// challenge did.
    FrameLimit,
    /// The answer was given up after the first turn (the stream closed or
    /// changed mode).
    Abandoned,
}

impl SessionFailure {
    /// The reason code.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoFace => "no_face",
            Self::MultipleFaces => "multiple_faces",
            Self::TrackLost => "track_lost",
            Self::RepeatedFrame => "repeated_frame",
            Self::WrongDirection => "wrong_direction",
            Self::StepTimeout => "step_timeout",
            Self::Pad => "pad",
            Self::Identity => "identity",
            Self::NotClaimedUser => "not_claimed_user",
            Self::Expired => "expired",
            Self::FrameLimit => "frame_limit",
            Self::Abandoned => "abandoned",
        }
    }
}

impl From<ChallengeFailure> for SessionFailure {
    fn from(f: ChallengeFailure) -> Self {
        match f {
            ChallengeFailure::WrongDirection => Self::WrongDirection,
            ChallengeFailure::StepTimeout => Self::StepTimeout,
        }
    }
}

/// What one frame of a session showed, as the pipeline measured it.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameFacts {
    /// Faces found.
    pub faces: usize,
    /// The face, when there was exactly one.
    pub face: Option<face_core::DetectedFace>,
    /// A digest of the frame's bytes.
    pub digest: [u8; 32],
    /// The passive verdict, on the frames that were checked.
    pub live: Option<crate::liveness::LivenessVerdict>,
}

/// The least overlap of one frame's face box with the previous one's for
/// the face to count as the same track (a head turning at 25 frames a
/// second moves far less).
pub const TRACK_MIN_IOU: f32 = 0.3;

/// The per-frame rules of a session around its challenge: exactly one
/// face, one continuous track, no frame twice, attack verdicts counted,
/// the head-turn state machine; and which frames to embed for the identity
/// checks (the first frontal face, and the frontal face after each
/// return). Pure, like [`ChallengeProgress`].
#[derive(Debug, Clone)]
pub struct SessionCheck {
    progress: ChallengeProgress,
    last: Option<face_core::BoundingBox>,
    digests: std::collections::HashSet<[u8; 32]>,
    frames: usize,
    max_frames: usize,
    identity_frames: Vec<usize>,
    /// Frames the passive check ran on, and how many it called attacks.
    pad: (usize, usize),
}

impl SessionCheck {
    /// Checks a session of `challenge` started at `now`, taking at most
    /// `max_frames` frames.
    pub fn new(
        challenge: Challenge,
        policy: ChallengePolicy,
        max_frames: usize,
        now: Instant,
    ) -> Self {
        Self {
            progress: ChallengeProgress::new(challenge, policy, now),
            last: None,
            digests: Default::default(),
            frames: 0,
            max_frames,
            identity_frames: Vec::new(),
            pad: (0, 0),
        }
    }

    /// Whether the passive check called most of the frames it ran on
    /// attacks. Decided over the session, not per frame: a live face's
    /// frames are each refused about one time in twenty (the check's
    /// BPCER), so one refused frame of thirty says little, while a print
    /// or a screen is refused on nearly all of them.
    pub fn pad_failed(&self) -> bool {
        let (checked, attacks) = self.pad;
        checked > 0 && 2 * attacks > checked
    }

    /// Follows one frame seen at `now`; a failure is final.
    pub fn frame(&mut self, facts: &FrameFacts, now: Instant) -> Result<Phase, SessionFailure> {
        let index = self.frames;
        self.frames += 1;
        if self.frames > self.max_frames {
            return Err(SessionFailure::FrameLimit);
        }
        if !self.digests.insert(facts.digest) {
            return Err(SessionFailure::RepeatedFrame);
        }
        let face = match facts.faces {
            0 => return Err(SessionFailure::NoFace),
            1 => facts.face.as_ref().ok_or(SessionFailure::NoFace)?,
            _ => return Err(SessionFailure::MultipleFaces),
        };
        if let Some(last) = &self.last {
            if last.iou(&face.bbox) < TRACK_MIN_IOU {
                return Err(SessionFailure::TrackLost);
            }
        }
        self.last = Some(face.bbox);
        if let Some(verdict) = facts.live {
            self.pad.0 += 1;
            if verdict == crate::liveness::LivenessVerdict::Attack {
                self.pad.1 += 1;
            }
        }
        let Some(r) = face_core::pose::yaw_ratio(&face.landmarks) else {
            return Err(SessionFailure::NoFace);
        };
        let before = self.progress.phase();
        let after = self.progress.observe(r, now)?;
        // A frontal face at the start and at each return: the frames the
        // identity checks embed.
        let frontal_now = matches!(
            (before, after),
            (Phase::Start, Phase::Turning { .. })
                | (Phase::Returning { .. }, Phase::Turning { .. })
                | (Phase::Returning { .. }, Phase::Done)
        );
        if frontal_now {
            self.identity_frames.push(index);
        }
        Ok(after)
    }

    /// The phase now.
    pub fn phase(&self) -> Phase {
        self.progress.phase()
    }

    /// Whether the phase's time is up at `now`.
    pub fn timed_out(&self, now: Instant) -> bool {
        self.progress.timed_out(now)
    }

    /// The frames (0-based, in the order given) whose faces the identity
    /// checks compare: one per frontal moment, at least two when the
    /// challenge is done.
    pub fn identity_frames(&self) -> &[usize] {
        &self.identity_frames
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const LEFT: f32 = 0.72;
    const RIGHT: f32 = 0.28;
    const FRONT: f32 = 0.5;

    fn run(steps: &[Turn], trace: &[f32]) -> Result<Phase, ChallengeFailure> {
        let t0 = Instant::now();
        let mut p = ChallengeProgress::new(
            Challenge {
                steps: steps.to_vec(),
            },
            ChallengePolicy::default(),
            t0,
        );
        let mut last = Ok(Phase::Start);
        for (i, &r) in trace.iter().enumerate() {
            last = p.observe(r, t0 + Duration::from_millis(40 * i as u64));
            if last.is_err() {
                break;
            }
        }
        last
    }

    #[test]
    fn draws_alternate_from_either_side_with_two_or_three_steps() {
        use Turn::*;
        assert_eq!(Challenge::from_bits(0).steps, [TurnLeft, TurnRight]);
        assert_eq!(Challenge::from_bits(1).steps, [TurnRight, TurnLeft]);
        assert_eq!(
            Challenge::from_bits(2).steps,
            [TurnLeft, TurnRight, TurnLeft]
        );
        assert_eq!(
            Challenge::from_bits(3).steps,
            [TurnRight, TurnLeft, TurnRight]
        );
        assert!((2..=3).contains(&Challenge::random().unwrap().steps.len()));
    }

    #[test]
    fn turns_in_order_each_with_a_return_pass() {
        use Turn::*;
        let trace = [FRONT, 0.6, LEFT, LEFT, 0.55, FRONT, 0.4, RIGHT, 0.45, FRONT];
        assert_eq!(run(&[TurnLeft, TurnRight], &trace), Ok(Phase::Done));
    }

    #[test]
    fn the_other_order_is_the_wrong_direction() {
        use Turn::*;
        let trace = [FRONT, LEFT, FRONT, RIGHT, FRONT];
        assert_eq!(
            run(&[TurnRight, TurnLeft], &trace),
            Err(ChallengeFailure::WrongDirection)
        );
    }

    #[test]
    fn a_head_that_never_turns_times_out() {
        let trace = vec![FRONT; 300]; // 12 s at 25 frames a second
        assert_eq!(
            run(&[Turn::TurnLeft, Turn::TurnRight], &trace),
            Err(ChallengeFailure::StepTimeout)
        );
    }

    #[test]
    fn hovering_at_the_edge_counts_once_and_needs_a_real_return() {
        use Turn::*;
        // 0.62 is neither turned (> 0.64) nor frontal (< 0.60): the turn
        // is not made twice by wobbling around 0.64.
        let trace = [FRONT, LEFT, 0.62, LEFT, 0.62, LEFT];
        assert_eq!(
            run(&[TurnLeft, TurnRight], &trace),
            Ok(Phase::Returning { step: 0 })
        );
        // Swinging straight from one side to the other skips the return.
        assert_eq!(
            run(&[TurnLeft, TurnRight], &[FRONT, LEFT, RIGHT]),
            Err(ChallengeFailure::WrongDirection)
        );
    }

    fn facts(left: f32, r: f32, n: u8) -> FrameFacts {
        use face_core::{BoundingBox, DetectedFace, LandmarkScheme, Landmarks, Point};
        let p = |x: f32, y: f32| Point { x: left + x, y };
        FrameFacts {
            faces: 1,
            face: Some(DetectedFace {
                bbox: BoundingBox {
                    left,
                    top: 100.0,
                    width: 100.0,
                    height: 120.0,
                },
                score: 0.9,
                landmarks: Landmarks {
                    scheme: LandmarkScheme::ArcFace5,
                    points: [
                        p(30.0, 150.0),
                        p(70.0, 150.0),
                        p(30.0 + 40.0 * r, 180.0),
                        p(35.0, 200.0),
                        p(65.0, 200.0),
                    ],
                },
            }),
            digest: [n; 32],
            live: None,
        }
    }

    fn check(max_frames: usize) -> (SessionCheck, Instant) {
        let t0 = Instant::now();
        let challenge = Challenge::from_bits(0);
        (
            SessionCheck::new(challenge, ChallengePolicy::default(), max_frames, t0),
            t0,
        )
    }

    #[test]
    fn a_session_refuses_frames_that_break_its_rules() {
        use crate::liveness::LivenessVerdict::{Attack, Live};
        let (mut c, t0) = check(10);
        assert_eq!(
            c.frame(&facts(100.0, FRONT, 0), t0),
            Ok(Phase::Turning { step: 0 })
        );
        // A jump of the box: another face, or a cut.
        assert_eq!(
            c.frame(&facts(300.0, FRONT, 1), t0),
            Err(SessionFailure::TrackLost)
        );
        let (mut c, t0) = check(10);
        let mut two = facts(100.0, FRONT, 0);
        two.faces = 2;
        two.face = None;
        assert_eq!(c.frame(&two, t0), Err(SessionFailure::MultipleFaces));
        let (mut c, t0) = check(10);
        let mut none = facts(100.0, FRONT, 0);
        none.faces = 0;
        none.face = None;
        assert_eq!(c.frame(&none, t0), Err(SessionFailure::NoFace));
        // Attacks decide over the session: one of three frames is not
        // enough, two are.
        let (mut c, t0) = check(10);
        for (i, verdict) in [Attack, Live, Live].into_iter().enumerate() {
            let n = u8::try_from(i).unwrap();
            let mut f = facts(100.0 + f32::from(n), FRONT, n);
            f.live = Some(verdict);
            c.frame(&f, t0).unwrap();
        }
        assert!(!c.pad_failed());
        let (mut c, t0) = check(10);
        for (i, verdict) in [Attack, Live, Attack].into_iter().enumerate() {
            let n = u8::try_from(i).unwrap();
            let mut f = facts(100.0 + f32::from(n), FRONT, n);
            f.live = Some(verdict);
            c.frame(&f, t0).unwrap();
        }
        assert!(c.pad_failed());
        let (mut c, t0) = check(2);
        c.frame(&facts(100.0, FRONT, 0), t0).unwrap();
        c.frame(&facts(102.0, FRONT, 1), t0).unwrap();
        assert_eq!(
            c.frame(&facts(104.0, FRONT, 2), t0),
            Err(SessionFailure::FrameLimit)
        );
    }

    #[test]
    fn a_passed_session_names_one_frontal_frame_per_return() {
        let (mut c, t0) = check(10);
        for (i, r) in [FRONT, LEFT, FRONT, RIGHT, FRONT].into_iter().enumerate() {
            let n = u8::try_from(i).unwrap();
            c.frame(&facts(100.0 + f32::from(n), r, n), t0).unwrap();
        }
        assert_eq!(c.phase(), Phase::Done);
        assert_eq!(c.identity_frames(), [0, 2, 4]);
    }

    #[test]
    fn a_still_whose_ratio_wanders_across_a_threshold_never_turns() {
        use Turn::*;
        // The yaw ratios of one still photo (the shared F2 sample), shifted
        // and re-encoded: they cross 0.36 (turned right) and 0.40
        // (frontal) by noise alone.
        let trace = [
            0.39, 0.394, 0.406, 0.422, 0.373, 0.368, 0.347, 0.409, 0.408, 0.353, 0.415, 0.364,
            0.379, 0.427, 0.356, 0.403, 0.357, 0.359, 0.41, 0.358, 0.386,
        ];
        for steps in [[TurnRight, TurnLeft], [TurnLeft, TurnRight]] {
            assert_eq!(run(&steps, &trace), Ok(Phase::Turning { step: 0 }));
        }
    }

    #[test]
    fn a_turned_head_at_the_start_waits_for_frontal() {
        use Turn::*;
        let trace = [RIGHT, RIGHT, FRONT, LEFT, FRONT, RIGHT, FRONT];
        assert_eq!(run(&[TurnLeft, TurnRight], &trace), Ok(Phase::Done));
    }
}
