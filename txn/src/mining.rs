//! Storage mining in replay: the index of mineable chunks, epochs, and the
//! decisions on mining operations, all from the log prefix.
//!
//! The scheme itself (seal, recall, quality, proofs, difficulty) is
//! `ordo-mine`'s; this module keeps what replay must remember to apply it,
//! and decides [`MiningOp`]s:
//!
//! - `Configure` turns mining on, once, and needs admin of the log.
//! - `RegisterMiner` makes the sender a miner and names who it credits.
//! - `SubmitProof` is accepted when the sender is the proof's miner and
//!   registered, the proof answers the epoch of the entry it is applied in
//!   or the one before ([`PROOF_WINDOW_EPOCHS`]), that epoch has accepted
//!   fewer than its cap, the attempt (miner, epoch, nonce) was never
//!   rewarded, and the proof verifies against the epoch's challenge and
//!   target and the recalled entry's commitment. It credits the
//!   beneficiary with the configured reward.
//!
//! # What is stored
//!
//! Replay's own rows (column `Meta`), written in each entry's batch:
//! `mining/state` (parameters, mineable chunks so far, the open epoch),
//! `mining/entry/<seq>` (each mineable entry's first chunk, commitment and
//! geometry), `mining/epoch/<epoch>` (challenge, mineable chunks, target)
//! and `mining/used/<miner><epoch><nonce>` (each rewarded attempt).
//! Rows anyone can read, versioned data of the system stream written by
//! the committing transaction: `mining/miner/<address>` (its beneficiary)
//! and `mining/reward/<beneficiary>` (total rewards, decimal text).
//!
//! An epoch opens when the header closing the one before it is applied
//! (its number, challenge and target are folded into the state digest);
//! the difficulty moves with the proofs accepted in the entries of the
//! epoch that closes.

use crate::attest::SYSTEM_STREAM;
use crate::codec::{Reader, Writer};
use crate::ids::hex;
use crate::record::{Address, MiningOp, Write};
use crate::{FastMap, FastSet, Outcome};
use ordo_kv::{Column, Engine, MvccError, MvccStore, WriteBatch};
use ordo_log::{EntryHeader, Geometry};
use ordo_mine::challenge::mineable_chunks;
use ordo_mine::limits::{
    MAX_EPOCH_ENTRIES, MAX_TARGET_PROOFS, MIN_EPOCH_ENTRIES, PROOF_WINDOW_EPOCHS,
    PROOFS_PER_EPOCH_FACTOR,
};
use ordo_mine::{
    EpochContext, MinedEntry, MiningProof, Target, epoch_challenge, epoch_of, header_hash,
    next_target, verify,
};

const STATE_KEY: &[u8] = b"mining/state";
const ENTRY_PREFIX: &[u8] = b"mining/entry/";
const EPOCH_PREFIX: &[u8] = b"mining/epoch/";
const USED_PREFIX: &[u8] = b"mining/used/";
/// Key prefix, in the system stream, of each miner's beneficiary.
pub const MINER_PREFIX: &[u8] = b"mining/miner/";
/// Key prefix, in the system stream, of each beneficiary's total rewards.
pub const REWARD_PREFIX: &[u8] = b"mining/reward/";

// A transaction can carry every proof the scheme makes.
const _: () = assert!(crate::limits::MAX_MINING_PROOF_BYTES >= ordo_mine::limits::MAX_PROOF_BYTES);

/// A log's mining parameters, set once by `Configure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MiningParams {
    /// Entries per epoch.
    pub epoch_entries: u64,
    /// Proofs per epoch the difficulty steers toward.
    pub target_proofs: u32,
    /// The first epoch's target.
    pub initial_target: Target,
    /// Credited per accepted proof.
    pub reward_per_proof: u64,
}

impl MiningParams {
    /// Parameters from a `Configure` operation's fields, or why they are
    /// refused.
    fn checked(
        epoch_entries: &u64,
        target_proofs: &u64,
        initial_target: &[u8; 32],
        reward_per_proof: &u64,
    ) -> Result<Self, String> {
        let epochs = MIN_EPOCH_ENTRIES..=MAX_EPOCH_ENTRIES;
        if !epochs.contains(epoch_entries) {
            return Err(format!(
                "an epoch has {MIN_EPOCH_ENTRIES} to {MAX_EPOCH_ENTRIES} entries, not {epoch_entries}"
            ));
        }
        let proofs = 1..=u64::from(MAX_TARGET_PROOFS);
        if !proofs.contains(target_proofs) {
            return Err(format!(
                "an epoch aims at 1 to {MAX_TARGET_PROOFS} proofs, not {target_proofs}"
            ));
        }
        if initial_target == &[0; 32] {
            return Err("a target of zero admits no proof".into());
        }
        Ok(Self {
            epoch_entries: *epoch_entries,
            target_proofs: *target_proofs as u32,
            initial_target: Target::from_bytes(*initial_target),
            reward_per_proof: *reward_per_proof,
        })
    }

    /// Most proofs one epoch accepts.
    pub fn proof_cap(&self) -> u32 {
        self.target_proofs * PROOFS_PER_EPOCH_FACTOR
    }
}

/// The epoch whose entries are being applied, once mining is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenEpoch {
    /// Its number.
    pub epoch: u64,
    /// Its target.
    pub target: Target,
    /// Proofs accepted in its entries so far.
    pub accepted: u32,
}

/// Replay's mining state between entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mining {
    /// Set once mining is configured.
    pub params: Option<MiningParams>,
    /// Mineable chunks of every entry indexed so far.
    pub mineable: u64,
    /// The epoch being applied, once one opened.
    pub open: Option<OpenEpoch>,
}

/// What one entry's committed mining operations changed, until the entry
/// is written.
#[derive(Debug, Default)]
pub(crate) struct MiningEffects {
    params: Option<MiningParams>,
    accepted: u32,
    used: FastSet<(Address, u64, u64)>,
    miners: FastMap<Address, Address>,
    rewards: FastMap<Address, u128>,
}

/// What a mining operation does if its transaction commits.
#[derive(Debug)]
pub(crate) enum MiningPlan {
    Configure(MiningParams),
    Register {
        miner: Address,
        beneficiary: Address,
    },
    Reward {
        attempt: (Address, u64, u64),
        beneficiary: Address,
        total: u128,
    },
}

impl MiningPlan {
    /// The data rows it writes in the system stream.
    pub(crate) fn write(&self) -> Option<Write> {
        let (key, value) = match self {
            MiningPlan::Configure(_) => return None,
            MiningPlan::Register { miner, beneficiary } => {
                (keyed(MINER_PREFIX, miner), beneficiary.to_vec())
            }
            MiningPlan::Reward {
                beneficiary, total, ..
            } => (
                keyed(REWARD_PREFIX, beneficiary),
                total.to_string().into_bytes(),
            ),
        };
        Some(Write {
            stream: SYSTEM_STREAM,
            key,
            value: Some(value),
        })
    }
}

impl MiningEffects {
    /// Takes a committed operation's plan into the entry's effects.
    pub(crate) fn apply(&mut self, plan: MiningPlan) {
        match plan {
            MiningPlan::Configure(params) => self.params = Some(params),
            MiningPlan::Register { miner, beneficiary } => {
                self.miners.insert(miner, beneficiary);
            }
            MiningPlan::Reward {
                attempt,
                beneficiary,
                total,
            } => {
                self.accepted += 1;
                self.used.insert(attempt);
                self.rewards.insert(beneficiary, total);
            }
        }
    }
}

/// Who and where a mining operation is decided.
pub(crate) struct Deciding<'a, E> {
    pub store: &'a MvccStore<E>,
    pub staged: &'a MiningEffects,
    pub sender: Address,
    /// The entry the operation is applied in.
    pub seq: u64,
    /// The state version it is decided against.
    pub version: u64,
    /// Whether the sender is an admin of the log.
    pub log_admin: bool,
}

type Decision = Result<Result<MiningPlan, Outcome>, MvccError>;

fn refused(reason: String) -> Decision {
    Ok(Err(Outcome::MiningRefused { reason }))
}

impl Mining {
    /// The state stored in `engine` (mining off, for a new store): what
    /// replay last wrote, atomically with its applied position.
    pub fn load<E: Engine>(engine: &E) -> Result<Self, MvccError> {
        match engine.get(Column::Meta, STATE_KEY)? {
            Some(bytes) => decode_state(&bytes),
            None => Ok(Self::default()),
        }
    }

    /// Decides one mining operation.
    pub(crate) fn decide<E: Engine>(&self, at: &Deciding<'_, E>, op: &MiningOp) -> Decision {
        match op {
            MiningOp::Configure {
                epoch_entries,
                target_proofs,
                initial_target,
                reward_per_proof,
            } => {
                let params = MiningParams::checked(
                    epoch_entries,
                    target_proofs,
                    initial_target,
                    reward_per_proof,
                );
                self.decide_configure(at, params)
            }
            MiningOp::RegisterMiner { beneficiary } => Ok(Ok(MiningPlan::Register {
                miner: at.sender,
                beneficiary: *beneficiary,
            })),
            MiningOp::SubmitProof { proof } => self.decide_proof(at, proof),
        }
    }

    fn decide_configure<E>(
        &self,
        at: &Deciding<'_, E>,
        params: Result<MiningParams, String>,
    ) -> Decision {
        if !at.log_admin {
            return Ok(Err(Outcome::PermissionDenied {
                op: "configure_mining".into(),
                stream: SYSTEM_STREAM,
                key: None,
            }));
        }
        if self.params.is_some() || at.staged.params.is_some() {
            return refused("mining is already configured on this log".into());
        }
        match params {
            Ok(params) => Ok(Ok(MiningPlan::Configure(params))),
            Err(reason) => refused(reason),
        }
    }

    fn decide_proof<E: Engine>(&self, at: &Deciding<'_, E>, bytes: &[u8]) -> Decision {
        let Some(params) = self.params else {
            return refused("mining is not configured on this log".into());
        };
        let proof = match MiningProof::decode(bytes) {
            Ok(proof) => proof,
            Err(e) => return refused(e.to_string()),
        };
        if proof.miner != at.sender {
            return refused(format!(
                "a proof is submitted by its miner: it names {}, the sender is {}",
                hex(&proof.miner),
                hex(&at.sender)
            ));
        }
        let Some(beneficiary) = beneficiary_of(at, &proof.miner)? else {
            return refused(format!("{} is not a registered miner", hex(&proof.miner)));
        };
        if let Err(reason) = self.admits(at, &params, &proof)? {
            return refused(reason);
        }
        let engine = at.store.engine();
        let Some(epoch) = epoch_row(engine, proof.epoch)? else {
            return refused(format!(
                "epoch {} opened before mining was configured",
                proof.epoch
            ));
        };
        let Some(entry) = entry_row(engine, proof.seq)? else {
            return refused(format!("entry {} holds nothing to mine", proof.seq));
        };
        if let Err(e) = verify(&proof, &epoch, &entry) {
            return refused(e.to_string());
        }
        let earned = reward_of(at, &beneficiary)? + u128::from(params.reward_per_proof);
        Ok(Ok(MiningPlan::Reward {
            attempt: (proof.miner, proof.epoch, proof.nonce),
            beneficiary,
            total: earned,
        }))
    }

    /// The checks on a proof that need no row: its epoch is open at this
    /// entry, the epoch's cap is not reached, the attempt is new.
    fn admits<E: Engine>(
        &self,
        at: &Deciding<'_, E>,
        params: &MiningParams,
        proof: &MiningProof,
    ) -> Result<Result<(), String>, MvccError> {
        let current = epoch_of(at.seq, params.epoch_entries);
        if proof.epoch > current || proof.epoch + PROOF_WINDOW_EPOCHS < current {
            return Ok(Err(format!(
                "epoch {} is not open: entry {} belongs to epoch {current}",
                proof.epoch, at.seq
            )));
        }
        let accepted = self
            .open
            .filter(|open| open.epoch == current)
            .map_or(0, |open| open.accepted)
            + at.staged.accepted;
        if accepted >= params.proof_cap() {
            return Ok(Err(format!(
                "epoch {current} has accepted its {} proofs",
                params.proof_cap()
            )));
        }
        let attempt = (proof.miner, proof.epoch, proof.nonce);
        let used = at.staged.used.contains(&attempt)
            || at
                .store
                .engine()
                .get(Column::Meta, &used_key(&attempt))?
                .is_some();
        if used {
            return Ok(Err(format!(
                "attempt {} of miner {} in epoch {} was already rewarded",
                proof.nonce,
                hex(&proof.miner),
                proof.epoch
            )));
        }
        Ok(Ok(()))
    }

    /// The state after entry `header` (`None`: an entry applied without its
    /// header, which mining cannot see), with `effects` from its committed
    /// operations; stages its rows in `batch` and folds an opened epoch
    /// into `digest`. `indexed` is false for an entry replay passed over
    /// unread: its data may be nowhere, so it is never recalled, but it
    /// still closes an epoch.
    pub(crate) fn after_entry(
        &self,
        header: Option<&EntryHeader>,
        indexed: bool,
        effects: MiningEffects,
        batch: &mut WriteBatch,
        digest: &mut blake3::Hasher,
    ) -> Mining {
        let mut next = self.clone();
        next.params = next.params.or(effects.params);
        if let Some(open) = &mut next.open {
            open.accepted += effects.accepted;
        }
        for attempt in &effects.used {
            batch.put(Column::Meta, used_key(attempt), Vec::new());
        }
        if let Some(header) = header {
            if indexed {
                next.index(header, batch);
            }
            next.open_epoch_after(header, batch, digest);
        }
        if next != *self {
            batch.put(Column::Meta, STATE_KEY.to_vec(), next.encode());
        }
        next
    }

    /// Adds a mineable entry to the recall index.
    fn index(&mut self, header: &EntryHeader, batch: &mut WriteBatch) {
        let geometry = header.entry.geometry;
        let chunks = mineable_chunks(&geometry);
        if chunks == 0 {
            return;
        }
        let mut row = Writer::with_capacity(8 + 32 + 16);
        row.u64(self.mineable)
            .fixed(&header.entry.commitment)
            .fixed(&geometry.to_bytes());
        batch.put(
            Column::Meta,
            seq_key(ENTRY_PREFIX, header.seq),
            row.finish(),
        );
        self.mineable += chunks;
    }

    /// Opens the next epoch if `header` closes one.
    fn open_epoch_after(
        &mut self,
        header: &EntryHeader,
        batch: &mut WriteBatch,
        digest: &mut blake3::Hasher,
    ) {
        let Some(params) = self.params else { return };
        let Some(after) = header.seq.checked_add(1) else {
            return;
        };
        if after % params.epoch_entries != 0 {
            return;
        }
        let epoch = after / params.epoch_entries;
        let target = match self.open {
            Some(open) => next_target(open.target, open.accepted, params.target_proofs),
            None => params.initial_target,
        };
        let challenge = epoch_challenge(epoch, &header_hash(header));
        let mut row = Writer::with_capacity(32 + 8 + 32);
        row.fixed(&challenge)
            .u64(self.mineable)
            .fixed(&target.to_bytes());
        batch.put(Column::Meta, seq_key(EPOCH_PREFIX, epoch), row.finish());
        digest.update(b"mining epoch");
        digest.update(&epoch.to_le_bytes());
        digest.update(&challenge);
        digest.update(&target.to_bytes());
        self.open = Some(OpenEpoch {
            epoch,
            target,
            accepted: 0,
        });
    }

    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        match &self.params {
            None => w.u8(0),
            Some(p) => w
                .u8(1)
                .u64(p.epoch_entries)
                .u64(u64::from(p.target_proofs))
                .fixed(&p.initial_target.to_bytes())
                .u64(p.reward_per_proof),
        };
        w.u64(self.mineable);
        match &self.open {
            None => w.u8(0),
            Some(o) => w
                .u8(1)
                .u64(o.epoch)
                .fixed(&o.target.to_bytes())
                .u64(u64::from(o.accepted)),
        };
        w.finish()
    }
}

fn decode_state(bytes: &[u8]) -> Result<Mining, MvccError> {
    let corrupt = |e: crate::codec::DecodeError| MvccError::Corrupt(format!("mining state: {e}"));
    let mut r = Reader::new(bytes);
    let params = match r.u8("params flag").map_err(corrupt)? {
        0 => None,
        _ => Some(MiningParams {
            epoch_entries: r.u64("epoch entries").map_err(corrupt)?,
            target_proofs: r.u64("target proofs").map_err(corrupt)? as u32,
            initial_target: Target::from_bytes(r.fixed("initial target").map_err(corrupt)?),
            reward_per_proof: r.u64("reward").map_err(corrupt)?,
        }),
    };
    let mineable = r.u64("mineable").map_err(corrupt)?;
    let open = match r.u8("open flag").map_err(corrupt)? {
        0 => None,
        _ => Some(OpenEpoch {
            epoch: r.u64("epoch").map_err(corrupt)?,
            target: Target::from_bytes(r.fixed("target").map_err(corrupt)?),
            accepted: r.u64("accepted").map_err(corrupt)? as u32,
        }),
    };
    r.finish().map_err(corrupt)?;
    Ok(Mining {
        params,
        mineable,
        open,
    })
}

/// Epoch `epoch`'s context as replay opened it (challenge, mineable
/// chunks, target), if it opened while mining was on.
pub fn epoch_row<E: Engine>(engine: &E, epoch: u64) -> Result<Option<EpochContext>, MvccError> {
    let Some(bytes) = engine.get(Column::Meta, &seq_key(EPOCH_PREFIX, epoch))? else {
        return Ok(None);
    };
    let corrupt = |e: crate::codec::DecodeError| MvccError::Corrupt(format!("mining epoch: {e}"));
    let mut r = Reader::new(&bytes);
    let context = EpochContext {
        epoch,
        challenge: r.fixed("challenge").map_err(corrupt)?,
        mineable: r.u64("mineable").map_err(corrupt)?,
        target: Target::from_bytes(r.fixed("target").map_err(corrupt)?),
    };
    r.finish().map_err(corrupt)?;
    Ok(Some(context))
}

/// Entry `seq`'s row, if it was indexed as mineable.
pub fn entry_row<E: Engine>(engine: &E, seq: u64) -> Result<Option<MinedEntry>, MvccError> {
    let Some(bytes) = engine.get(Column::Meta, &seq_key(ENTRY_PREFIX, seq))? else {
        return Ok(None);
    };
    decode_entry_row(seq, &bytes).map(Some)
}

/// The indexed entries from seq `from` on, in log order, at most `limit`:
/// what a miner rebuilds replay's recall index from.
pub fn entry_rows<E: Engine>(
    engine: &E,
    from: u64,
    limit: usize,
) -> Result<Vec<MinedEntry>, MvccError> {
    let mut rows = Vec::new();
    let mut failed = None;
    engine.scan_from(
        Column::Meta,
        &seq_key(ENTRY_PREFIX, from),
        &mut |key, value| {
            let Some(seq) = key.strip_prefix(ENTRY_PREFIX) else {
                return false;
            };
            let Ok(seq) = <[u8; 8]>::try_from(seq) else {
                failed = Some(MvccError::Corrupt("a mining entry key is not a seq".into()));
                return false;
            };
            match decode_entry_row(u64::from_be_bytes(seq), value) {
                Ok(entry) => rows.push(entry),
                Err(e) => failed = Some(e),
            }
            failed.is_none() && rows.len() < limit
        },
    )?;
    match failed {
        Some(e) => Err(e),
        None => Ok(rows),
    }
}

fn decode_entry_row(seq: u64, bytes: &[u8]) -> Result<MinedEntry, MvccError> {
    let corrupt = |e: crate::codec::DecodeError| MvccError::Corrupt(format!("mining entry: {e}"));
    let mut r = Reader::new(bytes);
    let first_chunk = r.u64("first chunk").map_err(corrupt)?;
    let commitment = r.fixed("commitment").map_err(corrupt)?;
    let geometry = Geometry::from_bytes(&r.fixed("geometry").map_err(corrupt)?)
        .map_err(|e| MvccError::Corrupt(format!("mining entry geometry: {e}")))?;
    r.finish().map_err(corrupt)?;
    Ok(MinedEntry {
        seq,
        first_chunk,
        commitment,
        geometry,
    })
}

/// A miner's beneficiary: staged in this entry, else as of the decision's version.
fn beneficiary_of<E: Engine>(
    at: &Deciding<'_, E>,
    miner: &Address,
) -> Result<Option<Address>, MvccError> {
    if let Some(beneficiary) = at.staged.miners.get(miner) {
        return Ok(Some(*beneficiary));
    }
    let row = system_row(at, &keyed(MINER_PREFIX, miner))?;
    row.map(|value| {
        <[u8; 20]>::try_from(value.as_slice())
            .map_err(|_| MvccError::Corrupt("a miner's beneficiary is not 20 bytes".into()))
    })
    .transpose()
}

/// A beneficiary's total rewards: staged in this entry, else as of the decision's version.
fn reward_of<E: Engine>(at: &Deciding<'_, E>, beneficiary: &Address) -> Result<u128, MvccError> {
    if let Some(total) = at.staged.rewards.get(beneficiary) {
        return Ok(*total);
    }
    let Some(value) = system_row(at, &keyed(REWARD_PREFIX, beneficiary))? else {
        return Ok(0);
    };
    std::str::from_utf8(&value)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| MvccError::Corrupt("a reward total is not a decimal number".into()))
}

/// A live data row of the system stream at the decision's version.
fn system_row<E: Engine>(at: &Deciding<'_, E>, key: &[u8]) -> Result<Option<Vec<u8>>, MvccError> {
    let found = at
        .store
        .get(Column::Data, &SYSTEM_STREAM, key, at.version)?;
    Ok(found.and_then(|versioned| versioned.value))
}

fn keyed(prefix: &[u8], address: &Address) -> Vec<u8> {
    [prefix, address.as_slice()].concat()
}

fn seq_key(prefix: &[u8], n: u64) -> Vec<u8> {
    [prefix, n.to_be_bytes().as_slice()].concat()
}

fn used_key((miner, epoch, nonce): &(Address, u64, u64)) -> Vec<u8> {
    [
        USED_PREFIX,
        miner.as_slice(),
        epoch.to_be_bytes().as_slice(),
        nonce.to_be_bytes().as_slice(),
    ]
    .concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_row_reads_back_as_written() {
        let state = Mining {
            params: Some(MiningParams {
                epoch_entries: 16,
                target_proofs: 8,
                initial_target: Target::one_in(100),
                reward_per_proof: 5,
            }),
            mineable: 1234,
            open: Some(OpenEpoch {
                epoch: 3,
                target: Target::one_in(77),
                accepted: 2,
            }),
        };
        assert_eq!(decode_state(&state.encode()).expect("decodes"), state);
        assert_eq!(
            decode_state(&Mining::default().encode()).expect("decodes"),
            Mining::default()
        );
    }
}
