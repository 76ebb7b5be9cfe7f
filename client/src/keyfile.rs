//! Key files: a secp256k1 secret as 64 hex digits and a newline, readable
//! only by its owner. `ordo keygen` writes one; `ordo dev` makes one for the
//! CLI user on first start.

use ordo_txn::SigningKey;
use ordo_txn::ids::hex;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

/// Why a key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// Reading or writing failed.
    #[error("key file {path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        error: std::io::Error,
    },
    /// The file does not hold a valid key.
    #[error("key file {path} is not a valid key: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Why not.
        reason: String,
    },
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    let text = text.strip_prefix("0x").unwrap_or(text);
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Reads the key in `path`.
pub fn load(path: &Path) -> Result<SigningKey, KeyFileError> {
    let text = std::fs::read_to_string(path).map_err(|error| KeyFileError::Io {
        path: path.into(),
        error,
    })?;
    let invalid = |reason: &str| KeyFileError::Invalid {
        path: path.into(),
        reason: reason.into(),
    };
    let bytes = unhex(text.trim()).ok_or_else(|| invalid("expected 64 hex digits"))?;
    if bytes.len() != 32 {
        return Err(invalid("expected 32 bytes (64 hex digits)"));
    }
    SigningKey::from_slice(&bytes).map_err(|e| invalid(&e.to_string()))
}

/// Writes a new random key to `path`, which must not exist yet (a key is
/// never overwritten), readable only by its owner.
pub fn create(path: &Path) -> Result<SigningKey, KeyFileError> {
    let io = |error| KeyFileError::Io {
        path: path.into(),
        error,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let key = SigningKey::random();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    writeln!(file, "{}", hex(&key.to_bytes().0)).map_err(io)?;
    file.sync_all().map_err(io)?;
    Ok(key)
}

/// The key in `path`, made there first if there is none (a node's own
/// keys: created on first start, the same ever after).
pub fn load_or_create(path: &Path) -> Result<SigningKey, KeyFileError> {
    if path.exists() {
        load(path)
    } else {
        create(path)
    }
}

/// The 20-byte address of `key`, as 0x-prefixed hex.
pub fn address_hex(key: &SigningKey) -> String {
    format!("0x{}", hex(&ordo_txn::address_of(key)))
}

/// Parses a 0x-prefixed or bare hex string of exactly `N` bytes.
pub fn parse_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    unhex(text.trim())?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_are_never_overwritten() {
        let dir = std::env::temp_dir().join(format!("ordo-keyfile-{}", std::process::id()));
        let path = dir.join("k");
        let _ = std::fs::remove_dir_all(&dir);
        let made = create(&path).unwrap();
        assert_eq!(
            ordo_txn::address_of(&load(&path).unwrap()),
            ordo_txn::address_of(&made)
        );
        assert!(create(&path).is_err(), "an existing key is not replaced");
        let mode = std::fs::metadata(&path).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        std::fs::write(&path, "not hex\n").unwrap();
        assert!(matches!(load(&path), Err(KeyFileError::Invalid { .. })));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn hex_parsing_is_strict() {
        assert_eq!(parse_hex::<2>("0x0aff"), Some([0x0a, 0xff]));
        assert_eq!(parse_hex::<2>("0aff00"), None);
        assert_eq!(parse_hex::<2>("zz00"), None);
    }
}
