//! Integers in paths and query strings, read the way the OpenAPI document
//! (JSON Schema) counts them: `12`, and also `12.0` or `1.2e1`, are the
//! integer 12; `12.5`, `NaN` and `inf` are not integers. A client that
//! serialises a whole-number float (JavaScript does for computed ids) gets
//! the same answer as one that writes `12`, and a schema-valid request is
//! never refused for its spelling.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

/// Largest magnitude an `f64` holds exactly: beyond it `1e300` would
/// silently become some other integer.
const EXACT_F64: f64 = 9_007_199_254_740_992.0;

/// The integer `raw` spells, if it spells one that fits an `i64`.
pub fn parse(raw: &str) -> Option<i64> {
    if let Ok(n) = raw.parse::<i64>() {
        return Some(n);
    }
    let f: f64 = raw.parse().ok()?;
    // `as` is exact here: finite, whole and within ±2^53.
    (f.is_finite() && f.fract() == 0.0 && f.abs() <= EXACT_F64).then_some(f as i64)
}

/// `#[serde(default, deserialize_with = "integer::optional")]` for an
/// optional integer query parameter of any integer type.
pub fn optional<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64>,
{
    let Some(raw) = Option::<String>::deserialize(d)? else {
        return Ok(None);
    };
    parse(&raw)
        .and_then(|n| T::try_from(n).ok())
        .map(Some)
        .ok_or_else(|| {
            let shown: String = raw.chars().take(40).collect();
            D::Error::custom(format!("{shown:?} is not an integer in range"))
        })
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn whole_numbers_in_any_spelling_are_integers() {
        assert_eq!(parse("12"), Some(12));
        assert_eq!(parse("-3"), Some(-3));
        assert_eq!(parse("277132.0"), Some(277_132));
        assert_eq!(parse("1.2e1"), Some(12));
        assert_eq!(parse("9223372036854775807"), Some(i64::MAX));
    }

    #[test]
    fn fractions_and_non_numbers_are_not() {
        for raw in [
            "12.5", "NaN", "inf", "-inf", "", "1e300", "0x10", "12 ", "one",
        ] {
            assert_eq!(parse(raw), None, "{raw:?}");
        }
    }
}
