//! The head-turn challenge: a random sequence of turns the person in front
//! of the camera must make, and the state machine that follows their head
//! through it, frame by frame.
//!
//! Pure: yaw ratios (face-core's `pose::yaw_ratio`, about 0.5 frontal) and
//! the server's clock in, the phase or a failure out. The session around it
//! (one face, the track, repeated frames, PAD, identity) is the caller's.
//!
//! Directions are the person's own: `TurnLeft` is their left, so in an
//! unmirrored camera frame the nose moves towards the image's *right* and
//! the ratio rises. Each turn must be followed by a return to frontal, and
//! the thresholds have hysteresis (turned beyond ±0.14 of 0.5, frontal
//! again within ±0.10), so a head hovering at the edge does not count twice.
//! Every phase has a time limit on the server's clock: client timestamps
//! are not trusted for it.

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
    /// The longest one phase (the first frontal face, a turn, a return)
    /// may take.
    pub phase_timeout: Duration,
}

impl Default for ChallengePolicy {
    fn default() -> Self {
        Self {
            turned_beyond: 0.14,
            frontal_within: 0.10,
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
}

impl ChallengeProgress {
    /// Starts `challenge` at `now`.
    pub fn new(challenge: Challenge, policy: ChallengePolicy, now: Instant) -> Self {
        Self {
            challenge,
            policy,
            phase: Phase::Start,
            since: now,
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

    /// Which way `r` is turned, if beyond the policy's limit.
    fn turned(&self, r: f32) -> Option<Turn> {
        if r > 0.5 + self.policy.turned_beyond {
            Some(Turn::TurnLeft)
        } else if r < 0.5 - self.policy.turned_beyond {
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

    /// Follows one frame's yaw ratio `r` seen at `now` (the server's
    /// clock). A failure is final: the caller ends the session.
    pub fn observe(&mut self, r: f32, now: Instant) -> Result<Phase, ChallengeFailure> {
        if self.phase == Phase::Done {
            return Ok(Phase::Done);
        }
        if now.saturating_duration_since(self.since) > self.policy.phase_timeout {
            return Err(ChallengeFailure::StepTimeout);
        }
        let steps = &self.challenge.steps;
        match self.phase {
            Phase::Start => {
                if self.frontal(r) {
                    self.enter(Phase::Turning { step: 0 }, now);
                }
            }
            Phase::Turning { step } => match self.turned(r) {
                Some(t) if t == steps[step] => self.enter(Phase::Returning { step }, now),
                Some(_) => return Err(ChallengeFailure::WrongDirection),
                None => {}
            },
            Phase::Returning { step } => {
                if self.frontal(r) {
                    let next = match step + 1 < steps.len() {
                        true => Phase::Turning { step: step + 1 },
                        false => Phase::Done,
                    };
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

    #[test]
    fn a_turned_head_at_the_start_waits_for_frontal() {
        use Turn::*;
        let trace = [RIGHT, RIGHT, FRONT, LEFT, FRONT, RIGHT, FRONT];
        assert_eq!(run(&[TurnLeft, TurnRight], &trace), Ok(Phase::Done));
    }
}
