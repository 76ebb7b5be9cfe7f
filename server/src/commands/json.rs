//! `--json` output: one JSON object per line, built with serde.
//!
//! Keys and values are bytes, and not every byte string is text. The rule,
//! for every byte field: valid UTF-8 is a JSON string (control characters
//! escaped as JSON requires); anything else is an object holding its
//! standard, padded base64, `{"base64": "..."}`. A reader tells the two
//! apart by the JSON type, and both decode back to the exact bytes.

use base64::Engine as _;
use serde::Serialize;

/// Bytes as they appear in `--json` output (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum JsonBytes {
    /// Valid UTF-8, as a string.
    Text(String),
    /// Anything else, as base64.
    Binary {
        /// Standard alphabet, padded.
        base64: String,
    },
}

impl JsonBytes {
    /// The JSON form of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        match std::str::from_utf8(bytes) {
            Ok(text) => Self::Text(text.to_string()),
            Err(_) => Self::Binary {
                base64: base64::engine::general_purpose::STANDARD.encode(bytes),
            },
        }
    }

    /// The bytes a JSON value of this form stands for; `None` if the value
    /// follows neither form.
    pub fn decode(value: &serde_json::Value) -> Option<Vec<u8>> {
        match value {
            serde_json::Value::String(text) => Some(text.as_bytes().to_vec()),
            serde_json::Value::Object(fields) => {
                let encoded = fields.get("base64")?.as_str()?;
                base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .ok()
            }
            _ => None,
        }
    }
}

/// Prints `value` as one line of JSON on stdout.
pub fn print(value: &impl Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(value)?);
    Ok(())
}

/// What a committed write prints with `--json`.
#[derive(Debug, Serialize)]
pub struct CommittedJson {
    /// Always true: a write that did not commit prints an error instead.
    pub committed: bool,
    /// The version it committed at.
    pub version: u64,
}

impl CommittedJson {
    /// A commit at `version`.
    pub fn at(version: u64) -> Self {
        Self {
            committed: true,
            version,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_bytes_survive_a_trip_through_json_text(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let text = serde_json::to_string(&JsonBytes::of(&bytes)).expect("serializes");
            let parsed: serde_json::Value = serde_json::from_str(&text).expect("is JSON");
            prop_assert_eq!(JsonBytes::decode(&parsed), Some(bytes));
        }
    }

    #[test]
    fn control_characters_are_escaped_the_json_way() {
        let text = serde_json::to_string(&JsonBytes::of(b"a\x01b\n")).expect("serializes");
        assert_eq!(text, r#""a\u0001b\n""#);
    }

    #[test]
    fn invalid_utf8_becomes_base64() {
        let value = serde_json::to_value(JsonBytes::of(&[0xff, 0x00])).expect("serializes");
        assert_eq!(value, serde_json::json!({"base64": "/wA="}));
    }
}
