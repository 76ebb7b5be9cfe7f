//! Access control: who may write which keys and change which roles.
//!
//! The rules (also in `docs/ACL.md`):
//!
//! - A stream is created explicitly, by `CreateStream { name }`; its id is
//!   `stream_id(creator, name)`, so nobody can create (squat) a stream id that
//!   another account would derive. The creator becomes its first admin.
//! - Writing a key needs: admin of the stream; or, for a *special* key, the
//!   special-writer role for that key (the stream writer role is not enough);
//!   or, for a normal key, the stream writer role.
//! - `GrantAdmin`, `SetKeySpecial`, `SetKeyNormal`, `RevokeWriter` and
//!   `RevokeSpecialWriter` need admin. `GrantWriter` needs admin or writer
//!   (writers may delegate). `GrantSpecialWriter` needs admin or the special
//!   writer role of that key. `Renounce*` are always allowed for oneself.
//! - Every check looks at the state *before* the transaction: operations in
//!   one transaction never enable each other or its writes.
//! - Every operation other than `CreateStream`, and every write, needs the
//!   stream to exist.
//!
//! - `GrantGateway` and `RevokeGateway` need admin of the log: of the
//!   system stream, whose first admin the genesis record names.
//!
//! Roles are stored as versioned facts in the `Acl` column, so the ACL state
//! at any version can be read like data.

use crate::FastMap;
use crate::Outcome;
use crate::attest::SYSTEM_STREAM;
pub use crate::ids::stream_id;
use crate::record::{AclOp, Address, Write};
use ordo_kv::{Column, Engine, MvccError, MvccStore, StreamId};

/// First byte of a special-key fact's key (see [`Fact::key`]).
const SPECIAL_KEY_TAG: u8 = 3;

/// One stored access-control fact about a stream.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Fact {
    /// The stream exists.
    Exists,
    /// The account is an admin.
    Admin(Address),
    /// The account is a stream writer.
    Writer(Address),
    /// The key is special.
    SpecialKey(Vec<u8>),
    /// The account is a special writer of the key.
    SpecialWriter(Address, Vec<u8>),
    /// The account is a gateway (a fact of [`crate::attest::SYSTEM_STREAM`]).
    Gateway(Address),
}

impl Fact {
    /// The fact's key inside the stream's ACL keyspace.
    pub fn key(&self) -> Vec<u8> {
        // Room for the longest shape (tag, address, user key): one allocation.
        let user_key = match self {
            Fact::SpecialKey(k) | Fact::SpecialWriter(_, k) => k.len(),
            _ => 0,
        };
        let mut out = Vec::with_capacity(1 + 20 + user_key);
        match self {
            Fact::Exists => out.push(0),
            Fact::Admin(a) => {
                out.push(1);
                out.extend_from_slice(a);
            }
            Fact::Writer(a) => {
                out.push(2);
                out.extend_from_slice(a);
            }
            Fact::SpecialKey(k) => {
                out.push(SPECIAL_KEY_TAG);
                out.extend_from_slice(k);
            }
            Fact::SpecialWriter(a, k) => {
                out.push(4);
                out.extend_from_slice(a);
                out.extend_from_slice(k);
            }
            Fact::Gateway(a) => {
                out.push(5);
                out.extend_from_slice(a);
            }
        }
        out
    }
}

/// A fact change a transaction makes: (stream, fact, now true?).
pub type FactChange = (StreamId, Fact, bool);

/// Facts keyed by (stream, fact key), as [`Fact::key`] encodes them.
pub type FactMap = FastMap<(StreamId, Vec<u8>), bool>;

/// Most facts the replayer keeps cached; past this the cache starts over.
/// Every fact is also in the store, so the bound costs only reads.
pub const MAX_CACHED_FACTS: usize = 1 << 20;

/// The latest value of facts already looked up, so that deciding a
/// transaction does not read the store for every role check. It holds the
/// state as of the last applied entry: the replayer merges each entry's
/// changes after writing it. Outcomes never depend on what is cached.
#[derive(Debug, Default)]
pub struct FactCache {
    facts: std::cell::RefCell<FactMap>,
    /// Streams known to have never had a special key: most streams. A write
    /// to them needs no per-key lookup, which matters because written keys
    /// are mostly new and would miss `facts`.
    special_free: std::cell::RefCell<FastMap<StreamId, bool>>,
}

impl FactCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    fn get(&self, key: &(StreamId, Vec<u8>)) -> Option<bool> {
        self.facts.borrow().get(key).copied()
    }

    fn insert(&self, key: (StreamId, Vec<u8>), holds: bool) {
        let mut facts = self.facts.borrow_mut();
        if facts.len() >= MAX_CACHED_FACTS {
            facts.clear();
        }
        facts.insert(key, holds);
    }

    /// Records the changes of an applied entry.
    pub fn merge(&self, changes: FactMap) {
        for (key, holds) in changes {
            if key.1.first() == Some(&SPECIAL_KEY_TAG) {
                self.special_free.borrow_mut().insert(key.0, false);
            }
            self.insert(key, holds);
        }
    }
}

/// Facts as of the state a decision is made against: the store at the
/// latest applied version (through the cache, when there is one), overlaid
/// with what earlier transactions of the same entry changed.
pub struct AclView<'a, E> {
    store: &'a MvccStore<E>,
    overlay: &'a FactMap,
    cache: Option<&'a FactCache>,
    at: u64,
}

impl<'a, E: Engine> AclView<'a, E> {
    /// A view over `store` at version `at`, with `overlay` taking precedence.
    /// `cache`, if given, must hold the state as of `at`.
    pub fn new(
        store: &'a MvccStore<E>,
        overlay: &'a FactMap,
        cache: Option<&'a FactCache>,
        at: u64,
    ) -> Self {
        Self {
            store,
            overlay,
            cache,
            at,
        }
    }

    /// Whether the fact holds.
    pub fn holds(&self, stream: &StreamId, fact: &Fact) -> Result<bool, MvccError> {
        let key = (*stream, fact.key());
        if let Some(&value) = self.overlay.get(&key) {
            return Ok(value);
        }
        if let Some(value) = self.cache.and_then(|c| c.get(&key)) {
            return Ok(value);
        }
        let stored = self.store.get(Column::Acl, stream, &key.1, self.at)?;
        let value = stored.is_some_and(|v| v.value.is_some());
        if let Some(cache) = self.cache {
            cache.insert(key, value);
        }
        Ok(value)
    }

    /// Whether `stream` may have special keys. `false` is certain; `true`
    /// means "look the key up".
    fn may_have_special_keys(&self, stream: &StreamId) -> Result<bool, MvccError> {
        let Some(cache) = self.cache else {
            return Ok(true);
        };
        if self
            .overlay
            .keys()
            .any(|(s, k)| s == stream && k.first() == Some(&SPECIAL_KEY_TAG))
        {
            return Ok(true);
        }
        if let Some(&free) = cache.special_free.borrow().get(stream) {
            return Ok(!free);
        }
        // Any stored special-key fact, current or revoked, sorts right after
        // the stream id and the tag byte.
        let mut prefix = stream.to_vec();
        prefix.push(SPECIAL_KEY_TAG);
        let mut found = false;
        self.store
            .engine()
            .scan_from(Column::Acl, &prefix, &mut |k, _| {
                found = k.starts_with(&prefix);
                false
            })?;
        let mut free = cache.special_free.borrow_mut();
        if free.len() >= MAX_CACHED_FACTS {
            free.clear();
        }
        free.insert(*stream, !found);
        Ok(found)
    }

    fn admin(&self, stream: &StreamId, who: &Address) -> Result<bool, MvccError> {
        self.holds(stream, &Fact::Admin(*who))
    }

    /// Whether `who` may write `key` of `stream`.
    pub fn may_write(
        &self,
        who: &Address,
        stream: &StreamId,
        key: &[u8],
    ) -> Result<bool, MvccError> {
        if self.admin(stream, who)? {
            return Ok(true);
        }
        if self.may_have_special_keys(stream)?
            && self.holds(stream, &Fact::SpecialKey(key.to_vec()))?
        {
            return self.holds(stream, &Fact::SpecialWriter(*who, key.to_vec()));
        }
        self.holds(stream, &Fact::Writer(*who))
    }

    /// Whether `who` may write every key of `stream`: the stream exists,
    /// has never had a special key, and `who` is its admin or a writer.
    /// Only facts of `stream` decide it, so an answer stays right until one
    /// of them changes.
    pub fn may_write_every_key(&self, who: &Address, stream: &StreamId) -> Result<bool, MvccError> {
        Ok(self.holds(stream, &Fact::Exists)?
            && !self.may_have_special_keys(stream)?
            && (self.admin(stream, who)? || self.holds(stream, &Fact::Writer(*who))?))
    }

    /// Checks a write; `Ok(None)` if allowed, else the abort.
    pub fn check_write(&self, who: &Address, write: &Write) -> Result<Option<Outcome>, MvccError> {
        if !self.holds(&write.stream, &Fact::Exists)? {
            return Ok(Some(Outcome::UnknownStream {
                stream: write.stream,
            }));
        }
        if self.may_write(who, &write.stream, &write.key)? {
            return Ok(None);
        }
        Ok(Some(Outcome::PermissionDenied {
            op: "write".into(),
            stream: write.stream,
            key: Some(write.key.clone()),
        }))
    }

    /// Checks an operation; returns the fact changes it makes, or the abort.
    pub fn check_op(
        &self,
        who: &Address,
        op: &AclOp,
    ) -> Result<Result<Vec<FactChange>, Outcome>, MvccError> {
        if let AclOp::Mining(_) | AclOp::Retention(_) | AclOp::Da(_) = op {
            // Replay's mining, retention and blob rules decide these; they
            // change no fact.
            return Ok(Ok(Vec::new()));
        }
        if let AclOp::CreateStream { name } = op {
            let stream = stream_id(who, name);
            if self.holds(&stream, &Fact::Exists)? {
                return Ok(Err(Outcome::StreamExists { stream }));
            }
            return Ok(Ok(vec![
                (stream, Fact::Exists, true),
                (stream, Fact::Admin(*who), true),
            ]));
        }
        let (stream, needed, change, key) = self.requirement(who, op);
        if !self.holds(&stream, &Fact::Exists)? {
            return Ok(Err(Outcome::UnknownStream { stream }));
        }
        let allowed = match needed {
            Needs::Nothing => true,
            Needs::Admin => self.admin(&stream, who)?,
            Needs::AdminOrWriter => {
                self.admin(&stream, who)? || self.holds(&stream, &Fact::Writer(*who))?
            }
            Needs::AdminOrSpecialWriter(key) => {
                self.admin(&stream, who)? || self.holds(&stream, &Fact::SpecialWriter(*who, key))?
            }
        };
        if allowed {
            Ok(Ok(vec![change]))
        } else {
            Ok(Err(Outcome::PermissionDenied {
                op: op.name().into(),
                stream,
                key,
            }))
        }
    }

    /// What an operation (other than CreateStream) needs, and what it changes.
    fn requirement(
        &self,
        who: &Address,
        op: &AclOp,
    ) -> (StreamId, Needs, FactChange, Option<Vec<u8>>) {
        match op.clone() {
            AclOp::CreateStream { .. } | AclOp::Mining(_) | AclOp::Retention(_) | AclOp::Da(_) => {
                unreachable!("handled by check_op")
            }
            AclOp::GrantAdmin { stream, account } => (
                stream,
                Needs::Admin,
                (stream, Fact::Admin(account), true),
                None,
            ),
            AclOp::RenounceAdmin { stream } => (
                stream,
                Needs::Nothing,
                (stream, Fact::Admin(*who), false),
                None,
            ),
            AclOp::SetKeySpecial { stream, key } => (
                stream,
                Needs::Admin,
                (stream, Fact::SpecialKey(key.clone()), true),
                Some(key),
            ),
            AclOp::SetKeyNormal { stream, key } => (
                stream,
                Needs::Admin,
                (stream, Fact::SpecialKey(key.clone()), false),
                Some(key),
            ),
            AclOp::GrantWriter { stream, account } => (
                stream,
                Needs::AdminOrWriter,
                (stream, Fact::Writer(account), true),
                None,
            ),
            AclOp::RevokeWriter { stream, account } => (
                stream,
                Needs::Admin,
                (stream, Fact::Writer(account), false),
                None,
            ),
            AclOp::RenounceWriter { stream } => (
                stream,
                Needs::Nothing,
                (stream, Fact::Writer(*who), false),
                None,
            ),
            AclOp::GrantSpecialWriter {
                stream,
                key,
                account,
            } => (
                stream,
                Needs::AdminOrSpecialWriter(key.clone()),
                (stream, Fact::SpecialWriter(account, key.clone()), true),
                Some(key),
            ),
            AclOp::RevokeSpecialWriter {
                stream,
                key,
                account,
            } => (
                stream,
                Needs::Admin,
                (stream, Fact::SpecialWriter(account, key.clone()), false),
                Some(key),
            ),
            AclOp::RenounceSpecialWriter { stream, key } => (
                stream,
                Needs::Nothing,
                (stream, Fact::SpecialWriter(*who, key.clone()), false),
                Some(key),
            ),
            AclOp::GrantGateway { account } => (
                SYSTEM_STREAM,
                Needs::Admin,
                (SYSTEM_STREAM, Fact::Gateway(account), true),
                None,
            ),
            AclOp::RevokeGateway { account } => (
                SYSTEM_STREAM,
                Needs::Admin,
                (SYSTEM_STREAM, Fact::Gateway(account), false),
                None,
            ),
        }
    }
}

enum Needs {
    Nothing,
    Admin,
    AdminOrWriter,
    AdminOrSpecialWriter(Vec<u8>),
}
