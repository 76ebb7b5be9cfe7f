//! Model-based test of replay: random logs of transactions (point and range
//! reads, puts, deletes, every ACL operation, resends and reused ids, stale and future
//! read versions, forged signatures, garbage entries) are replayed by ordo
//! and by a deliberately simple reference model written here. Outcomes and
//! the final state (data at every version, ACL facts) must match exactly.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use ordo_kv::{Column, Engine, MemEngine, RocksEngine, StreamId};
use ordo_txn::replay::fact_holds;
use ordo_txn::{
    AclOp, Address, Fact, Outcome, Read, Replayer, SignedTransaction, Transaction, TxnId, Write,
};
use ordo_txn::{check_entry, encode_batch};
use proptest::prelude::*;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Small on purpose, so that `TooOld` is reachable.
const WINDOW: u64 = 6;
const ACCOUNTS: usize = 3;
const NAMES: [&[u8]; 2] = [b"alpha", b"beta"];
const KEYS: [&[u8]; 4] = [b"a", b"b", b"c", b"d"];

// ---------------------------------------------------------------- specs

/// A stream by (creator, name index): six possible streams.
type StreamSpec = (usize, usize);

#[derive(Debug, Clone)]
enum ReadSpec {
    Key(StreamSpec, usize),
    Range(StreamSpec, usize, Option<usize>),
}

#[derive(Debug, Clone)]
enum WriteSpec {
    Put(StreamSpec, usize, u8),
    Delete(StreamSpec, usize),
}

#[derive(Debug, Clone)]
enum OpSpec {
    Create(usize),
    GrantAdmin(StreamSpec, usize),
    RenounceAdmin(StreamSpec),
    SetSpecial(StreamSpec, usize),
    SetNormal(StreamSpec, usize),
    GrantWriter(StreamSpec, usize),
    RevokeWriter(StreamSpec, usize),
    RenounceWriter(StreamSpec),
    GrantSpecial(StreamSpec, usize, usize),
    RevokeSpecial(StreamSpec, usize, usize),
    RenounceSpecial(StreamSpec, usize),
}

#[derive(Debug, Clone, Copy)]
enum Signing {
    Good,
    WrongKey,
    FlippedBit(usize),
}

#[derive(Debug, Clone)]
enum VersionSpec {
    Lag(u64),
    Future(u64),
}

#[derive(Debug, Clone)]
struct TxSpec {
    sender: usize,
    /// `None`: a fresh id; `Some(n)`: reuse the n-th id used so far (mod count).
    reuse: Option<usize>,
    version: VersionSpec,
    reads: Vec<ReadSpec>,
    writes: Vec<WriteSpec>,
    ops: Vec<OpSpec>,
    signing: Signing,
}

#[derive(Debug, Clone)]
enum EntrySpec {
    Batch(Vec<TxSpec>),
    Garbage(Vec<u8>),
}

/// Mostly the streams the genesis entry creates ("alpha"); sometimes
/// "beta", which exists only if some transaction created it.
fn stream_spec() -> impl Strategy<Value = StreamSpec> {
    (
        0..ACCOUNTS,
        prop_oneof![6 => Just(0usize), 1 => Just(1usize)],
    )
}

fn key_ix() -> impl Strategy<Value = usize> {
    0..KEYS.len()
}

fn read_spec() -> impl Strategy<Value = ReadSpec> {
    prop_oneof![
        3 => (stream_spec(), key_ix()).prop_map(|(s, k)| ReadSpec::Key(s, k)),
        1 => (stream_spec(), key_ix(), proptest::option::of(key_ix())).prop_map(|(s, a, b)| ReadSpec::Range(s, a, b)),
    ]
}

fn write_spec() -> impl Strategy<Value = WriteSpec> {
    prop_oneof![
        3 => (stream_spec(), key_ix(), any::<u8>()).prop_map(|(s, k, v)| WriteSpec::Put(s, k, v)),
        1 => (stream_spec(), key_ix()).prop_map(|(s, k)| WriteSpec::Delete(s, k)),
    ]
}

fn op_spec() -> impl Strategy<Value = OpSpec> {
    let acct = || 0..ACCOUNTS;
    prop_oneof![
        3 => (0..NAMES.len()).prop_map(OpSpec::Create),
        1 => (stream_spec(), acct()).prop_map(|(s, a)| OpSpec::GrantAdmin(s, a)),
        1 => stream_spec().prop_map(OpSpec::RenounceAdmin),
        1 => (stream_spec(), key_ix()).prop_map(|(s, k)| OpSpec::SetSpecial(s, k)),
        1 => (stream_spec(), key_ix()).prop_map(|(s, k)| OpSpec::SetNormal(s, k)),
        2 => (stream_spec(), acct()).prop_map(|(s, a)| OpSpec::GrantWriter(s, a)),
        1 => (stream_spec(), acct()).prop_map(|(s, a)| OpSpec::RevokeWriter(s, a)),
        1 => stream_spec().prop_map(OpSpec::RenounceWriter),
        1 => (stream_spec(), key_ix(), acct()).prop_map(|(s, k, a)| OpSpec::GrantSpecial(s, k, a)),
        1 => (stream_spec(), key_ix(), acct()).prop_map(|(s, k, a)| OpSpec::RevokeSpecial(s, k, a)),
        1 => (stream_spec(), key_ix()).prop_map(|(s, k)| OpSpec::RenounceSpecial(s, k)),
    ]
}

fn tx_spec() -> impl Strategy<Value = TxSpec> {
    let version = prop_oneof![
        12 => (0u64..4).prop_map(VersionSpec::Lag),
        3 => (4u64..10).prop_map(VersionSpec::Lag),
        1 => (1u64..3).prop_map(VersionSpec::Future),
    ];
    let signing = prop_oneof![
        30 => Just(Signing::Good),
        1 => Just(Signing::WrongKey),
        1 => (0usize..64).prop_map(Signing::FlippedBit),
    ];
    (
        0..ACCOUNTS,
        proptest::option::weighted(0.06, any::<usize>()),
        version,
        proptest::collection::vec(read_spec(), 0..4),
        proptest::collection::vec(write_spec(), 0..3),
        prop_oneof![2 => Just(vec![]), 1 => proptest::collection::vec(op_spec(), 1..3)],
        signing,
    )
        .prop_map(
            |(sender, reuse, version, reads, writes, ops, signing)| TxSpec {
                sender,
                reuse,
                version,
                reads,
                writes,
                ops,
                signing,
            },
        )
}

fn entry_spec() -> impl Strategy<Value = EntrySpec> {
    prop_oneof![
        20 => proptest::collection::vec(tx_spec(), 1..6).prop_map(EntrySpec::Batch),
        1 => proptest::collection::vec(any::<u8>(), 0..40).prop_map(EntrySpec::Garbage),
    ]
}

/// A genesis entry in which every account creates "alpha", then random entries.
fn log_spec() -> impl Strategy<Value = Vec<EntrySpec>> {
    let create = |sender| TxSpec {
        sender,
        reuse: None,
        version: VersionSpec::Lag(0),
        reads: vec![],
        writes: vec![],
        ops: vec![OpSpec::Create(0)],
        signing: Signing::Good,
    };
    let genesis = EntrySpec::Batch((0..ACCOUNTS).map(create).collect());
    proptest::collection::vec(entry_spec(), 1..16).prop_map(move |entries| {
        let mut log = vec![genesis.clone()];
        log.extend(entries);
        log
    })
}

// ---------------------------------------------------------------- building

fn stream(spec: StreamSpec) -> StreamId {
    stream_of(spec.0, NAMES[spec.1])
}

fn key(ix: usize) -> Vec<u8> {
    KEYS[ix].to_vec()
}

fn build_op(op: &OpSpec) -> AclOp {
    match *op {
        OpSpec::Create(n) => AclOp::CreateStream {
            name: NAMES[n].to_vec(),
        },
        OpSpec::GrantAdmin(s, a) => AclOp::GrantAdmin {
            stream: stream(s),
            account: address(a),
        },
        OpSpec::RenounceAdmin(s) => AclOp::RenounceAdmin { stream: stream(s) },
        OpSpec::SetSpecial(s, k) => AclOp::SetKeySpecial {
            stream: stream(s),
            key: key(k),
        },
        OpSpec::SetNormal(s, k) => AclOp::SetKeyNormal {
            stream: stream(s),
            key: key(k),
        },
        OpSpec::GrantWriter(s, a) => AclOp::GrantWriter {
            stream: stream(s),
            account: address(a),
        },
        OpSpec::RevokeWriter(s, a) => AclOp::RevokeWriter {
            stream: stream(s),
            account: address(a),
        },
        OpSpec::RenounceWriter(s) => AclOp::RenounceWriter { stream: stream(s) },
        OpSpec::GrantSpecial(s, k, a) => AclOp::GrantSpecialWriter {
            stream: stream(s),
            key: key(k),
            account: address(a),
        },
        OpSpec::RevokeSpecial(s, k, a) => AclOp::RevokeSpecialWriter {
            stream: stream(s),
            key: key(k),
            account: address(a),
        },
        OpSpec::RenounceSpecial(s, k) => AclOp::RenounceSpecialWriter {
            stream: stream(s),
            key: key(k),
        },
    }
}

/// What the log holds so far: the ids used, and every transaction sent
/// (with whether it was signed properly).
#[derive(Default)]
struct Sent {
    ids: Vec<(usize, TxnId)>,
    txs: Vec<(SignedTransaction, bool)>,
}

/// Turns a spec into a signed transaction, given the version applied before
/// its entry and what was sent so far. An odd `reuse` resends an earlier
/// transaction exactly (a client retrying after a crash); an even one
/// reuses an earlier id for new content.
fn build_tx(spec: &TxSpec, applied: u64, sent: &mut Sent) -> (SignedTransaction, bool) {
    let resend = spec.reuse.filter(|n| n % 2 == 1 && !sent.txs.is_empty());
    let built = match resend {
        Some(n) => sent.txs[n % sent.txs.len()].clone(),
        None => build_new_tx(spec, applied, &mut sent.ids),
    };
    sent.txs.push(built.clone());
    built
}

fn build_new_tx(
    spec: &TxSpec,
    applied: u64,
    ids: &mut Vec<(usize, TxnId)>,
) -> (SignedTransaction, bool) {
    let (sender, id) = match spec.reuse.filter(|_| !ids.is_empty()) {
        Some(n) => ids[n % ids.len()],
        None => {
            let id = txn_id(ids.len() as u64 + 1);
            ids.push((spec.sender, id));
            (spec.sender, id)
        }
    };
    let read_version = match spec.version {
        VersionSpec::Lag(lag) => applied.saturating_sub(lag),
        VersionSpec::Future(ahead) => applied + ahead,
    };
    let tx = Transaction {
        id,
        sender: address(sender),
        read_version,
        reads: spec
            .reads
            .iter()
            .map(|r| match *r {
                ReadSpec::Key(s, k) => Read::Key {
                    stream: stream(s),
                    key: key(k),
                },
                ReadSpec::Range(s, a, b) => Read::Range {
                    stream: stream(s),
                    start: key(a),
                    end: b.map(key),
                },
            })
            .collect(),
        writes: spec
            .writes
            .iter()
            .map(|w| match *w {
                WriteSpec::Put(s, k, v) => Write {
                    stream: stream(s),
                    key: key(k),
                    value: Some(vec![v]),
                },
                WriteSpec::Delete(s, k) => Write {
                    stream: stream(s),
                    key: key(k),
                    value: None,
                },
            })
            .collect(),
        acl: spec.ops.iter().map(build_op).collect(),
    };
    match spec.signing {
        Signing::Good => (signed_by(sender, tx), true),
        Signing::WrongKey => {
            let mut signed = signed_by((sender + 1) % ACCOUNTS, tx);
            signed.tx.sender = address(sender);
            (signed, false)
        }
        Signing::FlippedBit(bit) => {
            let mut signed = signed_by(sender, tx);
            signed.signature[bit / 8] ^= 1 << (bit % 8);
            (signed, false)
        }
    }
}

// ---------------------------------------------------------------- the model

/// A value written at a version (None: deleted).
type VersionedValue = (u64, Option<Vec<u8>>);

/// The reference: every write ever made, the set of ACL facts that hold,
/// and every decided outcome. Decisions follow docs/ACL.md and the replay
/// rules literally, with no caches or windows.
#[derive(Default)]
struct Model {
    version: u64,
    history: BTreeMap<(StreamId, Vec<u8>), Vec<VersionedValue>>,
    facts: HashSet<(StreamId, Fact)>,
    /// Each decided id: the signing hash of its transaction, and the outcome.
    decided: HashMap<(Address, TxnId), ([u8; 32], Outcome)>,
}

impl Model {
    fn last_write(&self, stream: &StreamId, key: &[u8]) -> u64 {
        self.history
            .get(&(*stream, key.to_vec()))
            .and_then(|h| h.last())
            .map_or(0, |(v, _)| *v)
    }

    fn first_conflict(&self, read: &Read, after: u64) -> Option<(StreamId, Vec<u8>)> {
        match read {
            Read::Key { stream, key } => {
                (self.last_write(stream, key) > after).then(|| (*stream, key.clone()))
            }
            Read::Range { stream, start, end } => self
                .history
                .keys()
                .filter(|(s, k)| s == stream && k >= start && end.as_ref().is_none_or(|e| k < e))
                .find(|(s, k)| self.last_write(s, k) > after)
                .cloned(),
        }
    }

    fn holds(&self, stream: &StreamId, fact: Fact) -> bool {
        self.facts.contains(&(*stream, fact))
    }

    fn may_write(&self, who: Address, stream: &StreamId, key: &[u8]) -> bool {
        if self.holds(stream, Fact::Admin(who)) {
            return true;
        }
        if self.holds(stream, Fact::SpecialKey(key.to_vec())) {
            return self.holds(stream, Fact::SpecialWriter(who, key.to_vec()));
        }
        self.holds(stream, Fact::Writer(who))
    }

    /// The fact change of one operation, or its abort.
    fn op(&self, who: Address, op: &AclOp) -> Result<(StreamId, Fact, bool), Outcome> {
        use AclOp::*;
        if let CreateStream { name } = op {
            let stream = ordo_txn::stream_id(&who, name);
            return if self.holds(&stream, Fact::Exists) {
                Err(Outcome::StreamExists { stream })
            } else {
                Ok((stream, Fact::Exists, true))
            };
        }
        let admin = |s: &StreamId| self.holds(s, Fact::Admin(who));
        let (stream, allowed, fact, holds, key) = match op.clone() {
            CreateStream { .. } => unreachable!(),
            Mining(_) | Retention(_) | Da(_) => {
                unreachable!("the model generates no mining, retention or blob operations")
            }
            GrantAdmin { stream, account } => {
                (stream, admin(&stream), Fact::Admin(account), true, None)
            }
            RenounceAdmin { stream } => (stream, true, Fact::Admin(who), false, None),
            SetKeySpecial { stream, key } => (
                stream,
                admin(&stream),
                Fact::SpecialKey(key.clone()),
                true,
                Some(key),
            ),
            SetKeyNormal { stream, key } => (
                stream,
                admin(&stream),
                Fact::SpecialKey(key.clone()),
                false,
                Some(key),
            ),
            GrantWriter { stream, account } => {
                let ok = admin(&stream) || self.holds(&stream, Fact::Writer(who));
                (stream, ok, Fact::Writer(account), true, None)
            }
            RevokeWriter { stream, account } => {
                (stream, admin(&stream), Fact::Writer(account), false, None)
            }
            RenounceWriter { stream } => (stream, true, Fact::Writer(who), false, None),
            GrantSpecialWriter {
                stream,
                key,
                account,
            } => {
                let ok =
                    admin(&stream) || self.holds(&stream, Fact::SpecialWriter(who, key.clone()));
                (
                    stream,
                    ok,
                    Fact::SpecialWriter(account, key.clone()),
                    true,
                    Some(key),
                )
            }
            RevokeSpecialWriter {
                stream,
                key,
                account,
            } => (
                stream,
                admin(&stream),
                Fact::SpecialWriter(account, key.clone()),
                false,
                Some(key),
            ),
            RenounceSpecialWriter { stream, key } => (
                stream,
                true,
                Fact::SpecialWriter(who, key.clone()),
                false,
                Some(key),
            ),
            GrantGateway { account } | RevokeGateway { account } => {
                let system = ordo_txn::attest::SYSTEM_STREAM;
                let grant = matches!(op, GrantGateway { .. });
                (system, admin(&system), Fact::Gateway(account), grant, None)
            }
        };
        if !self.holds(&stream, Fact::Exists) {
            return Err(Outcome::UnknownStream { stream });
        }
        if !allowed {
            return Err(Outcome::PermissionDenied {
                op: op.name().into(),
                stream,
                key,
            });
        }
        Ok((stream, fact, holds))
    }

    fn checks(&self, tx: &Transaction) -> Result<Vec<(StreamId, Fact, bool)>, Outcome> {
        if tx.read_version > self.version {
            return Err(Outcome::FutureVersion {
                read_version: tx.read_version,
                applied: self.version,
            });
        }
        let oldest = self.version.saturating_sub(WINDOW);
        if !tx.reads.is_empty() && tx.read_version < oldest {
            return Err(Outcome::TooOld {
                read_version: tx.read_version,
                oldest,
            });
        }
        if let Some((stream, key)) = tx
            .reads
            .iter()
            .find_map(|r| self.first_conflict(r, tx.read_version))
        {
            return Err(Outcome::Conflict { stream, key });
        }
        let mut changes = Vec::new();
        for op in &tx.acl {
            changes.push(self.op(tx.sender, op)?);
            if let AclOp::CreateStream { name } = op {
                changes.push((
                    ordo_txn::stream_id(&tx.sender, name),
                    Fact::Admin(tx.sender),
                    true,
                ));
            }
        }
        for w in &tx.writes {
            if !self.holds(&w.stream, Fact::Exists) {
                return Err(Outcome::UnknownStream { stream: w.stream });
            }
            if !self.may_write(tx.sender, &w.stream, &w.key) {
                return Err(Outcome::PermissionDenied {
                    op: "write".into(),
                    stream: w.stream,
                    key: Some(w.key.clone()),
                });
            }
        }
        Ok(changes)
    }

    fn decide(&mut self, tx: &Transaction) -> Outcome {
        let hash = ordo_txn::sign::signing_hash(tx);
        if let Some((first, original)) = self.decided.get(&(tx.sender, tx.id)) {
            return match *first == hash {
                true => Outcome::Duplicate {
                    original: Box::new(original.clone()),
                },
                false => Outcome::IdReused,
            };
        }
        let outcome = match self.checks(tx) {
            Err(abort) => abort,
            Ok(changes) => {
                self.version += 1;
                for w in &tx.writes {
                    self.history
                        .entry((w.stream, w.key.clone()))
                        .or_default()
                        .push((self.version, w.value.clone()));
                }
                for (stream, fact, holds) in changes {
                    if holds {
                        self.facts.insert((stream, fact));
                    } else {
                        self.facts.remove(&(stream, fact));
                    }
                }
                Outcome::Committed {
                    version: self.version,
                }
            }
        };
        self.decided
            .insert((tx.sender, tx.id), (hash, outcome.clone()));
        outcome
    }

    /// The value of a key as of `at` (tombstones read as absent).
    fn value_at(&self, stream: &StreamId, key: &[u8], at: u64) -> Option<Vec<u8>> {
        let history = self.history.get(&(*stream, key.to_vec()))?;
        history
            .iter()
            .rev()
            .find(|(v, _)| *v <= at)
            .and_then(|(_, value)| value.clone())
    }
}

// ---------------------------------------------------------------- comparing

/// Whether a range read ends before it starts: such a transaction does not
/// decode, so replay calls it malformed before looking at its signature.
fn has_inverted_range(tx: &Transaction) -> bool {
    tx.reads.iter().any(|read| match read {
        Read::Range { start, end, .. } => end.as_ref().is_some_and(|end| end < start),
        Read::Key { .. } => false,
    })
}

/// Outcomes whose reason text comes from a decoder or a signature library are
/// compared by kind; everything else exactly.
fn same_outcome(expected: &Outcome, actual: &Outcome) -> bool {
    match expected {
        Outcome::BadSignature { .. } | Outcome::Malformed { .. } => {
            expected.kind() == actual.kind()
        }
        _ => expected == actual,
    }
}

fn all_streams() -> Vec<StreamId> {
    (0..ACCOUNTS)
        .flat_map(|a| (0..NAMES.len()).map(move |n| stream((a, n))))
        .collect()
}

fn all_facts() -> Vec<Fact> {
    let mut facts = vec![Fact::Exists];
    for a in 0..ACCOUNTS {
        facts.extend([Fact::Admin(address(a)), Fact::Writer(address(a))]);
        facts.extend((0..KEYS.len()).map(|k| Fact::SpecialWriter(address(a), key(k))));
    }
    facts.extend((0..KEYS.len()).map(|k| Fact::SpecialKey(key(k))));
    facts
}

fn compare_state<E: Engine>(model: &Model, replayer: &Replayer<E>) -> Result<(), TestCaseError> {
    let store = replayer.store();
    prop_assert_eq!(replayer.applied().version, model.version);
    for stream in all_streams() {
        for at in 0..=model.version {
            for k in KEYS {
                let got = store
                    .get(Column::Data, &stream, k, at)
                    .unwrap()
                    .and_then(|v| v.value);
                prop_assert_eq!(got, model.value_at(&stream, k, at), "key {:?} at {}", k, at);
            }
            let page = store.scan(&stream, b"", None, at, 100, 1 << 20).unwrap();
            let got: Vec<(Vec<u8>, Vec<u8>)> =
                page.rows.into_iter().map(|r| (r.key, r.value)).collect();
            let want: Vec<(Vec<u8>, Vec<u8>)> = KEYS
                .iter()
                .filter_map(|k| model.value_at(&stream, k, at).map(|v| (k.to_vec(), v)))
                .collect();
            prop_assert_eq!(got, want, "scan at {}", at);
        }
        for fact in all_facts() {
            let got = fact_holds(store, &stream, &fact, model.version).unwrap();
            prop_assert_eq!(got, model.holds(&stream, fact.clone()), "fact {:?}", fact);
        }
    }
    Ok(())
}

/// Replays `log` through ordo (reopening the store before entry `reopen_at`,
/// if given) and through the model, comparing every outcome and the end state.
fn check_log<E: Engine>(
    log: &[EntrySpec],
    mut open: impl FnMut() -> E,
    reopen_at: Option<usize>,
) -> Result<(), TestCaseError> {
    let mut replayer = Replayer::open_with_window(open(), WINDOW).unwrap();
    let mut model = Model::default();
    let mut sent = Sent::default();
    for (seq, entry) in log.iter().enumerate() {
        if reopen_at == Some(seq) {
            drop(replayer);
            replayer = Replayer::open_with_window(open(), WINDOW).unwrap();
        }
        let (payload, expected) = match entry {
            EntrySpec::Garbage(bytes) => (
                bytes.clone(),
                vec![Outcome::Malformed {
                    reason: String::new(),
                }],
            ),
            EntrySpec::Batch(specs) => {
                let applied = model.version;
                let built: Vec<_> = specs
                    .iter()
                    .map(|s| build_tx(s, applied, &mut sent))
                    .collect();
                let expected = built
                    .iter()
                    .map(|(signed, good)| {
                        if has_inverted_range(&signed.tx) {
                            Outcome::Malformed {
                                reason: String::new(),
                            }
                        } else if *good {
                            model.decide(&signed.tx)
                        } else {
                            Outcome::BadSignature {
                                reason: String::new(),
                            }
                        }
                    })
                    .collect();
                let txs: Vec<SignedTransaction> = built.into_iter().map(|(s, _)| s).collect();
                (encode_batch(&txs), expected)
            }
        };
        let outcomes = replayer
            .apply_entry(seq as u64, check_entry(&payload))
            .unwrap();
        prop_assert_eq!(outcomes.len(), expected.len());
        for (want, got) in expected.iter().zip(&outcomes) {
            prop_assert!(
                same_outcome(want, got),
                "entry {}: expected {:?}, got {:?}",
                seq,
                want,
                got
            );
        }
    }
    prop_assert_eq!(replayer.applied().next_seq, log.len() as u64);
    compare_state(&model, &replayer)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn replay_in_memory_matches_the_model(log in log_spec()) {
        let engine = std::sync::Arc::new(MemEngine::new());
        check_log(&log, || engine.clone(), None)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    /// The same on RocksDB, closing and reopening the store mid-log: the
    /// applied position and the conflict window come back from disk.
    #[test]
    fn replay_on_rocksdb_across_a_reopen_matches_the_model(log in log_spec(), cut in any::<prop::sample::Index>()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        let reopen_at = cut.index(log.len());
        check_log(&log, || RocksEngine::open(&path).unwrap(), Some(reopen_at))?;
    }
}
