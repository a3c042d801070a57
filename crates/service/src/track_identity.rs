//! Who a tracked face is, decided from a few recognitions of it.
//!
//! A stream recognises tracks, not frames (face-core's `track` says which
//! face is which): an embedding and a search for every face of every frame
//! would cost a worker per face, and every search is one more chance for a
//! stranger to match someone. So a track is recognised when it is new,
//! when its face is clearly larger than any tried so far (closer to the
//! camera: more detail), and, while undecided, again after a few frames
//! (a person standing still), up to a fixed budget of attempts (Frigate
//! uses 12 per tracked person), and its identity is decided from the
//! attempts' history weighted by face area:
//!
//! - **identified** as a user when at least `agreeing` attempts matched
//!   that user *and* those attempts outweigh all the others together
//!   (other users and no match), so one lucky match of a stranger decides
//!   nothing, and a track whose attempts name two people decides neither;
//! - **unknown** when the attempts that matched nobody outweigh the rest
//!   and there are at least `agreeing` of them, or the budget is spent
//!   without an identity; an unknown track may still become identified
//!   while attempts remain (a person walking up to the door);
//! - **tentative** until then.
//!
//! An identified track is final: no more attempts, and it never carries a
//! second identity. Requiring two agreeing matches is what keeps the
//! per-track stranger-match rate near the per-search target although a
//! track may be searched up to twelve times; how near is measured on clips
//! of people who are not enrolled. Pure: no I/O, no clock.

/// How tracks are recognised.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecognitionPolicy {
    /// Most recognitions of one track.
    pub max_attempts: u32,
    /// Matches of one user that identify a track (when they also outweigh
    /// the other attempts), and non-matches that make it unknown.
    pub agreeing: u32,
    /// How much larger (area ratio) a face must be than the largest tried
    /// so far to be worth another attempt.
    pub growth: f32,
    /// Frames after an attempt before an undecided track is tried again
    /// whatever its size.
    pub retry_after_frames: u64,
}

impl Default for RecognitionPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 12,
            agreeing: 2,
            growth: 1.25,
            retry_after_frames: 5,
        }
    }
}

/// A track's identity as decided so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackIdentity {
    /// Not decided yet.
    Tentative,
    /// Decided: this user.
    Identified {
        /// The user.
        user_id: i64,
    },
    /// Decided: nobody enrolled (may still become identified).
    Unknown,
}

/// One recognition of a track: the face's area and whom it matched.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Attempt {
    /// The face box's area in pixels.
    pub area: f32,
    /// The user it matched at the identification threshold, if any.
    pub matched: Option<i64>,
}

/// The recognition history of one track.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackRecognition {
    attempts: Vec<Attempt>,
    largest_tried: f32,
    last_frame: u64,
    identity: TrackIdentity,
}

impl Default for TrackRecognition {
    fn default() -> Self {
        Self::new()
    }
}

impl TrackRecognition {
    /// A new track: tentative, nothing tried.
    pub fn new() -> Self {
        Self {
            attempts: Vec::new(),
            largest_tried: 0.0,
            last_frame: 0,
            identity: TrackIdentity::Tentative,
        }
    }

    /// The identity decided so far.
    pub fn identity(&self) -> TrackIdentity {
        self.identity
    }

    /// Attempts made.
    pub fn attempts(&self) -> usize {
        self.attempts.len()
    }

    /// Whether a face of `area` in frame number `frame` of the stream is
    /// worth a recognition: the track is not identified, has attempts
    /// left, and this is its first face, one clearly larger than any
    /// tried, or the first since `retry_after_frames`.
    pub fn wants(&self, area: f32, frame: u64, policy: &RecognitionPolicy) -> bool {
        !matches!(self.identity, TrackIdentity::Identified { .. })
            && self.attempts.len() < policy.max_attempts as usize
            && (self.attempts.is_empty()
                || area >= self.largest_tried * policy.growth
                || frame >= self.last_frame + policy.retry_after_frames)
    }

    /// Records one recognition; returns the new identity when it changed.
    /// An identified track keeps its identity whatever is recorded after.
    pub fn record(
        &mut self,
        attempt: Attempt,
        frame: u64,
        policy: &RecognitionPolicy,
    ) -> Option<TrackIdentity> {
        if matches!(self.identity, TrackIdentity::Identified { .. }) {
            return None;
        }
        self.last_frame = frame;
        self.attempts.push(attempt);
        self.largest_tried = self.largest_tried.max(attempt.area);
        let decided = decide(&self.attempts, policy);
        (decided != self.identity).then(|| {
            self.identity = decided;
            decided
        })
    }
}

/// The identity a history decides (see the module notes).
fn decide(attempts: &[Attempt], policy: &RecognitionPolicy) -> TrackIdentity {
    let total: f32 = attempts.iter().map(|a| a.area).sum();
    let weight = |who: Option<i64>| -> (u32, f32) {
        attempts
            .iter()
            .filter(|a| a.matched == who)
            .fold((0, 0.0), |(n, w), a| (n + 1, w + a.area))
    };
    let mut users: Vec<i64> = attempts.iter().filter_map(|a| a.matched).collect();
    users.sort_unstable();
    users.dedup();
    for user in users {
        let (n, w) = weight(Some(user));
        if n >= policy.agreeing && w > total - w {
            return TrackIdentity::Identified { user_id: user };
        }
    }
    let (n, w) = weight(None);
    let spent = attempts.len() >= policy.max_attempts as usize;
    if (n >= policy.agreeing && w > total - w) || spent {
        TrackIdentity::Unknown
    } else {
        TrackIdentity::Tentative
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(area: f32, matched: Option<i64>) -> Attempt {
        Attempt { area, matched }
    }

    #[test]
    fn two_agreeing_matches_identify_and_end_the_attempts() {
        let p = RecognitionPolicy::default();
        let mut t = TrackRecognition::new();
        assert!(t.wants(100.0, 0, &p));
        assert_eq!(t.record(at(100.0, Some(7)), 0, &p), None);
        assert_eq!(t.identity(), TrackIdentity::Tentative);
        // The same size again is not worth an attempt; a closer face is.
        assert!(!t.wants(110.0, 0, &p));
        assert!(t.wants(130.0, 0, &p));
        assert_eq!(
            t.record(at(130.0, Some(7)), 0, &p),
            Some(TrackIdentity::Identified { user_id: 7 })
        );
        assert!(!t.wants(1000.0, 0, &p), "an identified track is final");
    }

    #[test]
    fn one_stray_match_among_misses_decides_nothing() {
        let p = RecognitionPolicy::default();
        let mut t = TrackRecognition::new();
        t.record(at(100.0, None), 0, &p);
        t.record(at(130.0, Some(3)), 0, &p);
        assert_eq!(t.identity(), TrackIdentity::Tentative);
        assert_eq!(
            t.record(at(170.0, None), 0, &p),
            Some(TrackIdentity::Unknown)
        );
        // Walking up to the camera: a second, larger match outweighs the
        // misses (350 against 270 px²).
        assert_eq!(
            t.record(at(220.0, Some(3)), 0, &p),
            Some(TrackIdentity::Identified { user_id: 3 })
        );
    }

    #[test]
    fn a_second_match_decides_only_when_it_outweighs_the_rest() {
        let p = RecognitionPolicy::default();
        let mut t = TrackRecognition::new();
        t.record(at(100.0, Some(1)), 0, &p);
        t.record(at(130.0, Some(2)), 0, &p);
        t.record(at(170.0, None), 0, &p);
        // User 1 matched twice, 100 + 220 = 320 against 300: identified.
        t.record(at(220.0, Some(1)), 0, &p);
        assert_eq!(t.identity(), TrackIdentity::Identified { user_id: 1 });
        let mut t = TrackRecognition::new();
        t.record(at(300.0, None), 0, &p);
        t.record(at(400.0, Some(1)), 0, &p);
        t.record(at(500.0, None), 0, &p);
        // Two matches, 400 + 100 = 500 against 800: not enough.
        t.record(at(100.0, Some(1)), 0, &p);
        assert_eq!(t.identity(), TrackIdentity::Unknown);
    }

    #[test]
    fn an_identified_track_never_carries_a_second_identity() {
        let p = RecognitionPolicy::default();
        let mut t = TrackRecognition::new();
        t.record(at(100.0, Some(1)), 0, &p);
        t.record(at(130.0, Some(1)), 0, &p);
        assert_eq!(t.identity(), TrackIdentity::Identified { user_id: 1 });
        // A caller that records without asking `wants` changes nothing.
        for area in [1000.0, 2000.0, 4000.0] {
            assert_eq!(t.record(at(area, Some(2)), 0, &p), None);
        }
        assert_eq!(t.identity(), TrackIdentity::Identified { user_id: 1 });
        assert_eq!(t.attempts(), 2);
    }

    #[test]
    fn the_budget_ends_in_unknown() {
        let p = RecognitionPolicy {
            max_attempts: 3,
            ..RecognitionPolicy::default()
        };
        let mut t = TrackRecognition::new();
        let mut area = 100.0;
        for user in [Some(1), None, Some(2)] {
            assert!(t.wants(area, 0, &p));
            t.record(at(area, user), 0, &p);
            area *= 2.0;
        }
        assert_eq!(t.identity(), TrackIdentity::Unknown);
        assert!(!t.wants(area, 0, &p));
        assert_eq!(t.attempts(), 3);
    }

    #[test]
    fn an_undecided_track_is_tried_again_after_a_few_frames() {
        let p = RecognitionPolicy::default();
        let mut t = TrackRecognition::new();
        t.record(at(100.0, Some(4)), 10, &p);
        // The same size: not on the next frames, again on the fifth.
        assert!(!t.wants(100.0, 11, &p));
        assert!(!t.wants(100.0, 14, &p));
        assert!(t.wants(100.0, 15, &p));
        t.record(at(100.0, Some(4)), 15, &p);
        assert_eq!(t.identity(), TrackIdentity::Identified { user_id: 4 });
        assert!(!t.wants(100.0, 100, &p));
    }
}
