//! Face tracking across the frames of a stream: which face in this frame
//! is which face of the last ones.
//!
//! Pure and synchronous, like the rest of face-core: boxes in, track ids
//! out. The service keeps one [`Tracker`] per stream and decides *who* a
//! track is from a few recognitions of it (recognising every frame would
//! cost an embedding per face per frame and multiply the chances that a
//! stranger matches someone).
//!
//! The method is SORT's without its Kalman filter: each track predicts its
//! box from its last velocity (constant velocity, smoothed, and only for a
//! few frames), detections are matched to predictions by overlap (IoU),
//! greedily from the best pair down, and a track that finds no detection
//! for `max_missed` frames ends. A face rarely moves more than a fraction
//! of its width between frames at 25–30 fps, so overlap is enough; greedy
//! matching gives the optimal assignment whenever the overlaps are
//! unambiguous, which they are for the few, separated faces of a door
//! camera. A shot cut (the new face far from every old one) ends the old
//! tracks and starts new ones; a cut that puts another person where the
//! last one was is the recogniser's to notice (the identities disagree),
//! not the tracker's.

use crate::geometry::BoundingBox;

/// A track's id: unique within one [`Tracker`], never reused.
pub type TrackId = u64;

/// How tracks are made and ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackerConfig {
    /// Least overlap (IoU) between a track's predicted box and a detection
    /// for the detection to continue the track.
    pub min_iou: f32,
    /// Frames a track may go without a detection before it ends (a missed
    /// detection, a blink of occlusion).
    pub max_missed: u32,
    /// Detections a track needs before it is confirmed (one: every face
    /// found starts a confirmed track; more filters one-frame false
    /// detections).
    pub min_hits: u32,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        Self {
            min_iou: 0.3,
            max_missed: 8,
            min_hits: 1,
        }
    }
}

/// One detection's track, in the order the detections were given.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Assignment {
    /// The track the detection belongs to.
    pub track_id: TrackId,
    /// The detection started the track.
    pub new: bool,
    /// The track has reached `min_hits` detections.
    pub confirmed: bool,
    /// Detections of the track so far, this one included.
    pub hits: u32,
}

/// What one frame did to the tracks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Update {
    /// One per detection, in their order.
    pub assignments: Vec<Assignment>,
    /// Tracks that ended with this frame (missed for too long).
    pub ended: Vec<TrackId>,
}

#[derive(Debug, Clone)]
struct Track {
    id: TrackId,
    bbox: BoundingBox,
    /// Smoothed change of (centre x, centre y, width, height) per frame.
    velocity: [f32; 4],
    hits: u32,
    missed: u32,
}

impl Track {
    /// Where the track's face should be now: its last box moved by its
    /// velocity for each frame since, for at most a few frames (a
    /// constant-velocity guess goes wrong fast).
    fn predicted(&self) -> BoundingBox {
        let steps = (self.missed + 1).min(3) as f32;
        let [dx, dy, dw, dh] = self.velocity;
        let c = self.bbox.center();
        let w = (self.bbox.width + dw * steps).max(1.0);
        let h = (self.bbox.height + dh * steps).max(1.0);
        BoundingBox {
            left: c.x + dx * steps - w / 2.0,
            top: c.y + dy * steps - h / 2.0,
            width: w,
            height: h,
        }
    }

    fn observe(&mut self, bbox: BoundingBox) {
        let steps = (self.missed + 1) as f32;
        let (a, b) = (self.bbox.center(), bbox.center());
        let seen = [
            (b.x - a.x) / steps,
            (b.y - a.y) / steps,
            (bbox.width - self.bbox.width) / steps,
            (bbox.height - self.bbox.height) / steps,
        ];
        for (v, s) in self.velocity.iter_mut().zip(seen) {
            *v = 0.5 * *v + 0.5 * s;
        }
        self.bbox = bbox;
        self.hits += 1;
        self.missed = 0;
    }
}

/// The tracks of one stream.
#[derive(Debug, Clone)]
pub struct Tracker {
    config: TrackerConfig,
    tracks: Vec<Track>,
    next_id: TrackId,
}

impl Tracker {
    /// No tracks yet.
    pub fn new(config: TrackerConfig) -> Self {
        Self {
            config,
            tracks: Vec::new(),
            next_id: 1,
        }
    }

    /// Tracks alive now.
    pub fn live(&self) -> usize {
        self.tracks.len()
    }

    /// Takes one frame's detections: each continues the track whose
    /// predicted box it overlaps best (and at least `min_iou`), or starts
    /// a new one; tracks that found none count a miss and end after
    /// `max_missed`.
    pub fn update(&mut self, detections: &[BoundingBox]) -> Update {
        let predicted: Vec<BoundingBox> = self.tracks.iter().map(Track::predicted).collect();
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (t, p) in predicted.iter().enumerate() {
            for (d, det) in detections.iter().enumerate() {
                let iou = p.iou(det);
                if iou >= self.config.min_iou {
                    pairs.push((iou, t, d));
                }
            }
        }
        // Best overlap first; ties by track age (older first), then order.
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        let mut track_of: Vec<Option<usize>> = vec![None; detections.len()];
        let mut taken = vec![false; self.tracks.len()];
        for (_, t, d) in pairs {
            if !taken[t] && track_of[d].is_none() {
                taken[t] = true;
                track_of[d] = Some(t);
            }
        }
        for (t, track) in self.tracks.iter_mut().enumerate() {
            if !taken[t] {
                track.missed += 1;
            }
        }
        let mut assignments = Vec::with_capacity(detections.len());
        for (d, det) in detections.iter().enumerate() {
            let (index, new) = match track_of[d] {
                Some(t) => {
                    self.tracks[t].observe(*det);
                    (t, false)
                }
                None => {
                    self.tracks.push(Track {
                        id: self.next_id,
                        bbox: *det,
                        velocity: [0.0; 4],
                        hits: 1,
                        missed: 0,
                    });
                    self.next_id += 1;
                    (self.tracks.len() - 1, true)
                }
            };
            let track = &self.tracks[index];
            assignments.push(Assignment {
                track_id: track.id,
                new,
                confirmed: track.hits >= self.config.min_hits,
                hits: track.hits,
            });
        }
        let max_missed = self.config.max_missed;
        let mut ended = Vec::new();
        self.tracks.retain(|t| {
            let alive = t.missed <= max_missed;
            if !alive {
                ended.push(t.id);
            }
            alive
        });
        Update { assignments, ended }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn bx(left: f32, top: f32, side: f32) -> BoundingBox {
        BoundingBox {
            left,
            top,
            width: side,
            height: side,
        }
    }

    fn ids(u: &Update) -> Vec<TrackId> {
        u.assignments.iter().map(|a| a.track_id).collect()
    }

    #[test]
    fn a_moving_face_keeps_its_id() {
        let mut t = Tracker::new(TrackerConfig::default());
        let first = t.update(&[bx(100.0, 100.0, 80.0)]);
        assert!(first.assignments[0].new);
        for i in 1..50 {
            // 6 px a frame: 7.5 % of the face's width.
            let u = t.update(&[bx(100.0 + 6.0 * i as f32, 100.0, 80.0)]);
            assert_eq!(ids(&u), vec![1], "frame {i}");
            assert!(!u.assignments[0].new);
            assert_eq!(u.assignments[0].hits, i + 1);
        }
        assert_eq!(t.live(), 1);
    }

    #[test]
    fn prediction_carries_a_fast_face_that_overlap_alone_would_lose() {
        let mut t = Tracker::new(TrackerConfig::default());
        // 40 px a frame on an 80 px face: consecutive boxes overlap by
        // IoU 1/3 at first, then the predicted box lines up.
        for i in 0..20 {
            let u = t.update(&[bx(40.0 * i as f32, 0.0, 80.0)]);
            assert_eq!(ids(&u), vec![1], "frame {i}");
        }
    }

    #[test]
    fn two_faces_passing_keep_their_ids() {
        let mut t = Tracker::new(TrackerConfig::default());
        let u = t.update(&[bx(0.0, 0.0, 60.0), bx(300.0, 0.0, 60.0)]);
        assert_eq!(ids(&u), vec![1, 2]);
        for i in 1..10 {
            let s = 10.0 * i as f32;
            // Given in the other order: ids follow the faces, not the order.
            let u = t.update(&[bx(300.0 - s, 0.0, 60.0), bx(s, 0.0, 60.0)]);
            assert_eq!(ids(&u), vec![2, 1], "frame {i}");
        }
    }

    #[test]
    fn a_track_survives_a_few_missed_frames_then_ends() {
        let config = TrackerConfig {
            max_missed: 3,
            ..TrackerConfig::default()
        };
        let mut t = Tracker::new(config);
        t.update(&[bx(0.0, 0.0, 80.0)]);
        for _ in 0..3 {
            let u = t.update(&[]);
            assert!(u.ended.is_empty());
        }
        // Back after three misses: the same track.
        assert_eq!(ids(&t.update(&[bx(2.0, 0.0, 80.0)])), vec![1]);
        for _ in 0..3 {
            t.update(&[]);
        }
        assert_eq!(t.update(&[]).ended, vec![1]);
        assert_eq!(t.live(), 0);
        // A face after the track ended gets a new id; ids are never reused.
        let u = t.update(&[bx(2.0, 0.0, 80.0)]);
        assert_eq!(ids(&u), vec![2]);
        assert!(u.assignments[0].new);
    }

    #[test]
    fn a_cut_to_another_place_starts_a_new_track() {
        let mut t = Tracker::new(TrackerConfig::default());
        t.update(&[bx(0.0, 0.0, 80.0)]);
        let u = t.update(&[bx(400.0, 200.0, 80.0)]);
        assert_eq!(ids(&u), vec![2]);
        assert!(u.assignments[0].new);
    }

    #[test]
    fn confirmation_needs_min_hits() {
        let config = TrackerConfig {
            min_hits: 3,
            ..TrackerConfig::default()
        };
        let mut t = Tracker::new(config);
        let confirmed: Vec<bool> = (0..4)
            .map(|_| t.update(&[bx(0.0, 0.0, 80.0)]).assignments[0].confirmed)
            .collect();
        assert_eq!(confirmed, vec![false, false, true, true]);
    }

    #[test]
    fn one_detection_continues_one_track_only() {
        let mut t = Tracker::new(TrackerConfig::default());
        t.update(&[bx(0.0, 0.0, 80.0), bx(10.0, 0.0, 80.0)]);
        // One face where two tracks were: the better overlap keeps it.
        let u = t.update(&[bx(9.0, 0.0, 80.0)]);
        assert_eq!(ids(&u), vec![2]);
    }
}
