//! JSON files that carry their own checksum: a top-level `"checksum": "crc32:xxxxxxxx"` field
//! holding the CRC32 of the object's compact serialisation without that field (object keys in
//! sorted order, which is how `serde_json` orders maps). An edited, truncated or garbled file
//! then fails to load with its name in the message instead of feeding wrong values to a run.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// The field holding the checksum.
pub const CHECKSUM_FIELD: &str = "checksum";

#[derive(Debug, thiserror::Error)]
pub enum ChecksumError {
    #[error("not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("not a JSON object")]
    NotAnObject,
    #[error("has no \"checksum\" field (written by an older syllabus, or edited)")]
    Missing,
    #[error(
        "checksum mismatch (stored {stored}, content {computed}): the file was edited or corrupted"
    )]
    Mismatch { stored: String, computed: String },
}

/// Pretty JSON of `value` (which must serialise to an object) with its checksum field added.
pub fn to_checksummed_json<T: Serialize>(value: &T) -> Result<Vec<u8>, ChecksumError> {
    let mut object = match serde_json::to_value(value)? {
        Value::Object(map) => map,
        _ => return Err(ChecksumError::NotAnObject),
    };
    object.remove(CHECKSUM_FIELD);
    let sum = checksum_of(&Value::Object(object.clone()))?;
    object.insert(CHECKSUM_FIELD.into(), Value::String(sum));
    let mut bytes = serde_json::to_vec_pretty(&Value::Object(object))?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Parses `bytes`, verifies the checksum field (required when `required`; a file without one
/// is accepted otherwise) and deserialises the object.
pub fn from_checksummed_json<T: DeserializeOwned>(
    bytes: &[u8],
    required: bool,
) -> Result<T, ChecksumError> {
    let mut object = match serde_json::from_slice::<Value>(bytes)? {
        Value::Object(map) => map,
        _ => return Err(ChecksumError::NotAnObject),
    };
    match object.remove(CHECKSUM_FIELD) {
        Some(Value::String(stored)) => {
            let computed = checksum_of(&Value::Object(object.clone()))?;
            if stored != computed {
                return Err(ChecksumError::Mismatch { stored, computed });
            }
        }
        Some(other) => {
            return Err(ChecksumError::Mismatch {
                stored: other.to_string(),
                computed: "a \"crc32:...\" string".into(),
            })
        }
        None if required => return Err(ChecksumError::Missing),
        None => {}
    }
    Ok(serde_json::from_value(Value::Object(object))?)
}

fn checksum_of(value: &Value) -> Result<String, ChecksumError> {
    let compact = serde_json::to_vec(value)?;
    Ok(format!("crc32:{:08x}", crc32fast::hash(&compact)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct State {
        step: u64,
        loss: f64,
        name: String,
    }

    /// Floats whose shortest decimal form parses back exactly only with serde_json's
    /// `float_roundtrip` (wall times and rates in checkpoint manifests are such floats).
    #[test]
    fn awkward_floats_round_trip_through_the_checksum() {
        let mut rng = crate::rng::Rng::new(3);
        for _ in 0..2000 {
            let s = State {
                step: 1,
                loss: rng.next_f64() * 10f64.powi(rng.below(40) as i32 - 20),
                name: String::new(),
            };
            let bytes = to_checksummed_json(&s).unwrap();
            assert_eq!(from_checksummed_json::<State>(&bytes, true).unwrap(), s);
        }
    }

    #[test]
    fn round_trips_and_detects_any_edit() {
        let s = State {
            step: 42,
            loss: 3.25,
            name: "run".into(),
        };
        let bytes = to_checksummed_json(&s).unwrap();
        assert_eq!(from_checksummed_json::<State>(&bytes, true).unwrap(), s);
        let text = String::from_utf8(bytes).unwrap();
        for (from, to) in [("42", "43"), ("3.25", "3.5"), ("\"run\"", "\"rum\"")] {
            let edited = text.replacen(from, to, 1);
            let err = from_checksummed_json::<State>(edited.as_bytes(), true).unwrap_err();
            assert!(err.to_string().contains("mismatch"), "{from}: {err}");
        }
        let plain = serde_json::to_vec(&s).unwrap();
        assert!(matches!(
            from_checksummed_json::<State>(&plain, true),
            Err(ChecksumError::Missing)
        ));
        assert_eq!(from_checksummed_json::<State>(&plain, false).unwrap(), s);
        assert!(from_checksummed_json::<State>(b"[1]", false).is_err());
        assert!(from_checksummed_json::<State>(&text.as_bytes()[..20], false).is_err());
    }
}
