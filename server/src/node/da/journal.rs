//! What this node has said of each dispersal it took, on disk, so that a
//! blob whose dispersal a crash interrupted is reported as failed, never
//! lost from view.
//!
//! One small JSON file per dispersal under `DATA_DIR/da/`, written whole
//! (a temporary file, synced, then renamed over the old one), so a crash
//! leaves either the old state or the new.

use ordo_txn::Address;
use std::path::{Path, PathBuf};

/// How long the note of a failed dispersal is kept (the note of a
/// recorded one goes as soon as the log holds its record): a week, for
/// its owner to learn why; past it, notes are removed when the node
/// starts, so the journal holds the dispersals in flight and the recent
/// failures only.
pub const FAILED_KEPT: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// A dispersal's last state as this node recorded it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Noted {
    /// The blob id, hex.
    pub blob: String,
    /// The owner, hex.
    pub owner: String,
    /// The blob's length.
    pub size: u64,
    /// `queued`, `finalized` or `failed`.
    pub state: String,
    /// Why it failed.
    pub reason: String,
    /// The run of the node that took it (a dispersal left `queued` by an
    /// earlier run was interrupted).
    pub boot: String,
}

/// The journal directory.
#[derive(Debug, Clone)]
pub struct Journal {
    dir: PathBuf,
}

/// Why the journal could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("dispersal journal {path}: {source}")]
pub struct JournalError {
    path: PathBuf,
    source: std::io::Error,
}

impl Journal {
    /// The journal under `data_dir`, created if missing.
    pub fn open(data_dir: &Path) -> Result<Self, JournalError> {
        let dir = data_dir.join("da");
        std::fs::create_dir_all(&dir).map_err(|source| JournalError {
            path: dir.clone(),
            source,
        })?;
        Ok(Self { dir })
    }

    fn path(&self, blob: &[u8; 32], owner: &Address) -> PathBuf {
        self.dir.join(format!(
            "{}-{}.json",
            ordo_log::hex(blob),
            ordo_log::hex(owner)
        ))
    }

    /// Records `noted` (replacing what was there).
    pub fn write(
        &self,
        blob: &[u8; 32],
        owner: &Address,
        noted: &Noted,
    ) -> Result<(), JournalError> {
        let path = self.path(blob, owner);
        let fail = |source| JournalError {
            path: path.clone(),
            source,
        };
        let text = serde_json::to_vec(noted).map_err(|e| fail(std::io::Error::other(e)))?;
        let temporary = path.with_extension("tmp");
        {
            use std::io::Write;
            let mut file = std::fs::File::create(&temporary).map_err(fail)?;
            file.write_all(&text).map_err(fail)?;
            file.sync_all().map_err(fail)?;
        }
        std::fs::rename(&temporary, &path).map_err(fail)?;
        std::fs::File::open(&self.dir)
            .and_then(|dir| dir.sync_all())
            .map_err(fail)
    }

    /// Forgets what was noted for `owner`'s dispersal of `blob`.
    pub fn remove(&self, blob: &[u8; 32], owner: &Address) -> Result<(), JournalError> {
        let path = self.path(blob, owner);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(JournalError { path, source: e })
            }
            _ => Ok(()),
        }
    }

    /// Removes the notes of failed dispersals last written before `cutoff`.
    pub fn forget_failed_before(&self, cutoff: std::time::SystemTime) -> Result<(), JournalError> {
        let fail = |source| JournalError {
            path: self.dir.clone(),
            source,
        };
        for entry in std::fs::read_dir(&self.dir).map_err(fail)? {
            let path = entry.map_err(fail)?.path();
            let old = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .is_ok_and(|at| at < cutoff);
            if !old || path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let noted: Option<Noted> = std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
            if noted.is_some_and(|n| n.state == "failed") {
                let _ = std::fs::remove_file(&path);
            }
        }
        Ok(())
    }

    /// What was recorded for `owner`'s dispersal of `blob`, if anything.
    pub fn read(&self, blob: &[u8; 32], owner: &Address) -> Result<Option<Noted>, JournalError> {
        let path = self.path(blob, owner);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| JournalError {
                    path,
                    source: std::io::Error::other(e),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(JournalError { path, source }),
        }
    }

    /// The owners whose dispersal of `blob` was recorded.
    pub fn owners_of(&self, blob: &[u8; 32]) -> Result<Vec<Address>, JournalError> {
        let prefix = format!("{}-", ordo_log::hex(blob));
        let entries = std::fs::read_dir(&self.dir).map_err(|source| JournalError {
            path: self.dir.clone(),
            source,
        })?;
        Ok(entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .filter_map(|name| {
                let owner = name.strip_prefix(&prefix)?.strip_suffix(".json")?;
                ordo_client::keyfile::parse_hex::<20>(owner)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_noted_dispersal_reads_back_and_is_found_by_its_blob() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path()).unwrap();
        let noted = Noted {
            blob: "ab".into(),
            owner: "cd".into(),
            size: 5,
            state: "queued".into(),
            reason: String::new(),
            boot: "1".into(),
        };
        assert_eq!(journal.read(&[1; 32], &[2; 20]).unwrap(), None);
        journal.write(&[1; 32], &[2; 20], &noted).unwrap();
        let failed = Noted {
            state: "failed".into(),
            ..noted.clone()
        };
        journal.write(&[1; 32], &[2; 20], &failed).unwrap();
        assert_eq!(journal.read(&[1; 32], &[2; 20]).unwrap(), Some(failed));
        assert_eq!(journal.owners_of(&[1; 32]).unwrap(), vec![[2; 20]]);
        assert!(journal.owners_of(&[3; 32]).unwrap().is_empty());
        journal
            .forget_failed_before(std::time::SystemTime::now() - std::time::Duration::from_secs(60))
            .unwrap();
        assert!(
            journal.read(&[1; 32], &[2; 20]).unwrap().is_some(),
            "recent failures stay"
        );
        journal
            .forget_failed_before(std::time::SystemTime::now() + std::time::Duration::from_secs(60))
            .unwrap();
        assert_eq!(
            journal.read(&[1; 32], &[2; 20]).unwrap(),
            None,
            "old ones go"
        );
        journal.write(&[1; 32], &[2; 20], &noted).unwrap();
        journal.remove(&[1; 32], &[2; 20]).unwrap();
        journal.remove(&[1; 32], &[2; 20]).unwrap();
        assert_eq!(journal.read(&[1; 32], &[2; 20]).unwrap(), None);
    }
}
