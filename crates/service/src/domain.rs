//! Request values that validate on parse: once a `UserName` or a
//! `Threshold` exists, it is valid, and handlers never re-check.

use face_core::Metric;
use unicode_normalization::UnicodeNormalization;

use crate::ServiceError;

/// A display name: trimmed, NFC-normalised, 1–200 characters, no control
/// or invisible formatting characters (so "Alice" and "Al\u{200B}ice" cannot
/// pose as the same person in a list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserName(String);

impl UserName {
    /// Longest accepted name, in characters.
    pub const MAX_CHARS: usize = 200;

    /// Validates and normalises a name.
    pub fn parse(raw: &str) -> Result<Self, ServiceError> {
        let invalid = |message: String| ServiceError::Invalid {
            field: "name",
            message,
        };
        let name: String = raw.trim().nfc().collect();
        if name.is_empty() {
            return Err(invalid("must not be empty".into()));
        }
        let chars = name.chars().count();
        if chars > Self::MAX_CHARS {
            return Err(invalid(format!(
                "is {chars} characters long; at most {} are allowed",
                Self::MAX_CHARS
            )));
        }
        if let Some(c) = name.chars().find(|c| c.is_control() || is_invisible(*c)) {
            return Err(invalid(format!(
                "contains the control or invisible character U+{:04X}",
                c as u32
            )));
        }
        Ok(Self(name))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Zero-width and bidirectional-override characters: invisible in a list,
/// used to make two names look alike or reorder text.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}' | '\u{FEFF}' | '\u{00AD}')
}

/// A match threshold in the active model's own distance: a face matches
/// when its distance is at most this.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold(f32);

impl Threshold {
    /// The valid range for a metric: Euclidean distances of dlib-style
    /// descriptors lie in (0, 4]; cosine distances in (0, 2].
    pub fn range(metric: Metric) -> (f32, f32) {
        match metric {
            Metric::Euclidean => (0.0, 4.0),
            Metric::Cosine => (0.0, 2.0),
        }
    }

    /// Validates `value` for `metric`.
    pub fn parse(value: f64, metric: Metric) -> Result<Self, ServiceError> {
        let (lo, hi) = Self::range(metric);
        if !value.is_finite() || value <= f64::from(lo) || value > f64::from(hi) {
            return Err(ServiceError::Invalid {
                field: "threshold",
                message: format!(
                    "{value} is out of range: a {} distance threshold must be greater than {lo} and at most {hi}",
                    metric.as_str()
                ),
            });
        }
        Ok(Self(value as f32))
    }

    /// A threshold known valid (calibration, configuration checked at start).
    pub(crate) fn trusted(value: f32) -> Self {
        Self(value)
    }

    /// The value.
    pub fn value(self) -> f32 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_are_trimmed_normalised_and_checked() {
        assert_eq!(UserName::parse("  Ana  ").unwrap().as_str(), "Ana");
        // "é" as e + combining accent becomes the single code point.
        assert_eq!(
            UserName::parse("Jose\u{301}").unwrap().as_str(),
            "Jos\u{e9}"
        );
        assert!(UserName::parse("   ").is_err());
        assert!(UserName::parse("a\0b").is_err());
        assert!(UserName::parse("Al\u{200B}ice").is_err());
        assert!(UserName::parse("evil\u{202E}txt").is_err());
        assert!(UserName::parse(&"x".repeat(201)).is_err());
        assert!(UserName::parse("Robert'); DROP TABLE users;--").is_ok());
        assert!(UserName::parse("王小明").is_ok());
    }

    #[test]
    fn thresholds_are_range_checked_per_metric() {
        assert!(Threshold::parse(0.6, Metric::Euclidean).is_ok());
        assert!(Threshold::parse(3.0, Metric::Euclidean).is_ok());
        assert!(Threshold::parse(3.0, Metric::Cosine).is_err());
        for bad in [0.0, -0.1, f64::NAN, f64::INFINITY, 10.0] {
            let e = Threshold::parse(bad, Metric::Euclidean).unwrap_err();
            assert!(e.to_string().contains("at most 4"), "{e}");
        }
    }
}
