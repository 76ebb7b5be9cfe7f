//! Attested entries, and the genesis record that names the log's first
//! admin and gateways.
//!
//! A *gateway* is a node trusted to vouch for who sent a transaction: a
//! client proves its key to the gateway once per session, and the gateway
//! then packs that client's transactions without per-transaction
//! signatures into an *attested entry*, which it signs once. Replay applies
//! such a transaction only if the entry's signer holds the gateway role at
//! that position of the log (`docs/ACL.md`). Transactions signed by their
//! sender may ride in the same entry: they stand on their own signature.
//!
//! # Encoding (version 2), integers little-endian
//!
//! ```text
//! Attested := "OTA2" | count u32 | count x Item | signature[65]
//! Item     := 0x00 | Signed (len u32 | bytes)        signed by its sender
//!           | 0x01 | Transaction (len u32 | bytes)   vouched for by the gateway
//! signature = sign(keccak256("ordo/attested-entry/v2\0" || count u32
//!                            || for each item: kind u8 || item_hash[32]))
//! item_hash = keccak256(bytes)                             (kind 0x00)
//!           | the signing hash of the transaction bytes   (kind 0x01)
//!
//! Submitted := "OTS1" | count u32 | count x Item        (no signature)
//!
//! Genesis  := "OGN1" | admin[20] | count u32 | count x gateway[20]
//!           | "OGN2" | admin[20] | count u32 | count x gateway[20]
//!             | chain_id u64 | contract[20]           (ordered by a chain)
//! ```
//!
//! Why the signature covers item hashes and not the bytes: replay needs the
//! signing hash of every transaction anyway (idempotency compares it), so
//! an attestation over those hashes reads each transaction's bytes once,
//! where one over the whole body read them twice; Keccak was the largest
//! single cost of replaying an attested entry. The hashes are fixed-size
//! and counted, so the preimage names exactly one list of items.
//!
//! Version 1 (`"OTA1"`, the signature over `"ordo/attested-entry/v1\0"`
//! and every byte before it) is still read, so logs written with it replay
//! unchanged; nothing writes it any more.
//!
//! # Who vouches, by how the log is ordered
//!
//! A log's genesis record says what orders it ([`Ordering`]). Ordered by
//! its own members (one node, or raft voters that authenticate each other),
//! a header's submitter is whatever the appending member named, so a
//! gateway's word must be its signature: attested entries. Ordered by a
//! contract on a chain, a header's submitter is the account the chain
//! authenticated (`msg.sender`), so the header itself says which gateway
//! wrote the entry: a *submitted* entry carries no signature of its own and
//! its unsigned items are vouched for by the header's submitter. On such a
//! log replay also reads only entries whose submitter is a gateway or an
//! admin of the log: the chain lets anyone append, and an entry from
//! anyone else is skipped without fetching its shards, so a stranger can
//! neither write nor stall the log with a header whose data exists nowhere.
//!
//! A genesis record counts only as the log's first entry (seq 0); it makes
//! `admin` an admin of the [`SYSTEM_STREAM`] (the log's own admins, who
//! grant and revoke gateways) and each listed account a gateway. A log
//! without one has no gateways: every transaction in it is signed.

use crate::StreamId;
use crate::codec::{DecodeError, Reader, Writer};
use crate::limits::{MAX_BATCH_TXNS, MAX_ITEM_BYTES};
use crate::record::{Address, SignedTransaction, Transaction};
use crate::sign::{SignatureError, SigningKey, recover_canonical, sign_hash};

/// Magic of an attested entry, as written today (version 2).
pub const ATTESTED_MAGIC: &[u8; 4] = b"OTA2";
/// Magic of a version 1 attested entry: still read, no longer written.
pub const ATTESTED_MAGIC_V1: &[u8; 4] = b"OTA1";
/// Magic of a submitted entry (unsigned items vouched for by the header's
/// chain-authenticated submitter).
pub const SUBMITTED_MAGIC: &[u8; 4] = b"OTS1";
/// Magic of a genesis record of a log its members order.
pub const GENESIS_MAGIC: &[u8; 4] = b"OGN1";
/// Magic of a genesis record of a log a chain orders.
pub const GENESIS_MAGIC_CHAIN: &[u8; 4] = b"OGN2";

/// The stream whose facts are the log's own: its admins are the log's
/// admins, and gateway facts live in it. Not a value [`crate::stream_id`]
/// produces (those are BLAKE3 outputs), so no account can create it.
pub const SYSTEM_STREAM: StreamId = *b"ordo/system-stream/v1\0\0\0\0\0\0\0\0\0\0\0";

/// Where the keys recording a cluster's storage members start in the
/// [`SYSTEM_STREAM`]: `PREFIX` then the member id as 20 decimal digits,
/// valued with the member's peer address (and [`STORAGE_MEMBER_DRAINING`]
/// while it is being emptied). The log's admins write them.
pub const STORAGE_MEMBER_PREFIX: &[u8] = b"cluster/storage/";

/// What follows a draining storage member's address in its recorded value.
pub const STORAGE_MEMBER_DRAINING: &str = " draining";

/// The key recording storage member `id` (keys sort by id).
pub fn storage_member_key(id: u64) -> Vec<u8> {
    let mut key = STORAGE_MEMBER_PREFIX.to_vec();
    key.extend_from_slice(format!("{id:020}").as_bytes());
    key
}

/// The recorded value of a storage member at `addr`, draining or not.
pub fn storage_member_value(addr: &str, draining: bool) -> String {
    match draining {
        true => format!("{addr}{STORAGE_MEMBER_DRAINING}"),
        false => addr.to_string(),
    }
}

/// A recorded storage member's value: its address and whether it drains;
/// `None` for a value that names no address.
pub fn parse_storage_member_value(value: &str) -> Option<(String, bool)> {
    let (addr, draining) = match value.strip_suffix(STORAGE_MEMBER_DRAINING) {
        Some(addr) => (addr, true),
        None => (value, false),
    };
    let valid = !addr.is_empty() && !addr.contains(char::is_whitespace);
    valid.then(|| (addr.to_string(), draining))
}

/// Most gateways a genesis record may name.
pub const MAX_GENESIS_GATEWAYS: usize = 256;

const DOMAIN_V1: &[u8] = b"ordo/attested-entry/v1\0";
const DOMAIN: &[u8] = b"ordo/attested-entry/v2\0";
const SIGNED_ITEM: u8 = 0;
const ATTESTED_ITEM: u8 = 1;

/// One transaction of an attested entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// Signed by its sender: valid whoever carries it.
    Signed(SignedTransaction),
    /// Unsigned: its sender is what the gateway vouches for.
    Attested(Transaction),
}

impl Item {
    /// The item's kind byte and its transaction's bytes, as entries carry
    /// them.
    fn encoded(&self) -> (u8, Vec<u8>) {
        match self {
            Item::Signed(signed) => (SIGNED_ITEM, signed.encode()),
            Item::Attested(tx) => (ATTESTED_ITEM, tx.encode()),
        }
    }

    /// The transaction, signed or not.
    pub fn tx(&self) -> &Transaction {
        match self {
            Item::Signed(signed) => &signed.tx,
            Item::Attested(tx) => tx,
        }
    }
}

/// An item together with the bytes an entry carries for it, holding
/// exactly what decoding those bytes gives: made by decoding them (what a
/// node received), or by encoding an item made in this process and
/// checking that it decodes back to itself.
///
/// Why it exists: an entry packed from such items can be handed to this
/// node's own replica already decoded ([`attest_canonical`]), and decoding
/// the entry's payload would give the same items, so the replica neither
/// decodes nor hashes them a second time, and no replica elsewhere reads
/// anything different.
#[derive(Debug, Clone)]
pub struct CanonicalItem {
    item: Item,
    bytes: Vec<u8>,
}

/// Why an item made in this process cannot go into an entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ItemError {
    /// Its encoding does not decode (a limit is exceeded).
    #[error("the transaction's encoding does not decode: {0}")]
    Decode(#[from] DecodeError),
    /// Its encoding decodes to a different item: replay would read
    /// something other than what was made.
    #[error("the transaction's encoding decodes to a different transaction")]
    NotCanonical,
}

impl CanonicalItem {
    /// An unsigned transaction (a session's commit), from the bytes it
    /// came as.
    pub fn decode_attested(bytes: Vec<u8>) -> Result<Self, DecodeError> {
        let item = Item::Attested(Transaction::decode(&bytes)?);
        Ok(Self { item, bytes })
    }

    /// A transaction signed by its sender, from the bytes it came as. The
    /// signature is not checked here.
    pub fn decode_signed(bytes: Vec<u8>) -> Result<Self, DecodeError> {
        let item = Item::Signed(SignedTransaction::decode(&bytes)?);
        Ok(Self { item, bytes })
    }

    /// An item made in this process: encoded, then decoded back and
    /// compared, so that what replay reads is what was made.
    pub fn new(item: Item) -> Result<Self, ItemError> {
        let (kind, bytes) = item.encoded();
        let back = match kind {
            SIGNED_ITEM => Self::decode_signed(bytes)?,
            _ => Self::decode_attested(bytes)?,
        };
        match back.item == item {
            true => Ok(back),
            false => Err(ItemError::NotCanonical),
        }
    }

    /// The item.
    pub fn item(&self) -> &Item {
        &self.item
    }

    /// The signed transaction, for an item its sender signed.
    pub fn signed(&self) -> Option<&SignedTransaction> {
        match &self.item {
            Item::Signed(signed) => Some(signed),
            Item::Attested(_) => None,
        }
    }

    /// The bytes an entry carries for it.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The length of the bytes an entry carries for it.
    pub fn encoded_len(&self) -> usize {
        self.bytes.len()
    }

    fn kind(&self) -> u8 {
        match self.item {
            Item::Signed(_) => SIGNED_ITEM,
            Item::Attested(_) => ATTESTED_ITEM,
        }
    }
}

/// The log's first entry: who administers the log, its first gateways, and
/// what orders it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Genesis {
    /// Admin of the [`SYSTEM_STREAM`]: grants and revokes gateways.
    pub admin: Address,
    /// Accounts that are gateways from the start.
    pub gateways: Vec<Address>,
    /// What orders the log's headers, and so what a header's submitter is
    /// worth.
    pub ordering: Ordering,
}

/// What orders a log's headers, as its genesis record declares it. Part of
/// the log, so every replica takes a header's submitter alike; a node
/// checks it against the sequencer it follows (a log is refused by a node
/// that orders it another way).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ordering {
    /// The log's own members: a single node, or raft voters that admit only
    /// authenticated members. A header's submitter is what the appending
    /// member named; every submitter's entries are read.
    #[default]
    Members,
    /// The contract at `contract` on the EVM chain `chain_id`: a header's
    /// submitter is the account the chain authenticated. Only entries
    /// submitted by a gateway or an admin of the log are read, and a
    /// gateway may vouch for unsigned items by submitting them.
    Chain {
        /// The chain's id (EIP-155).
        chain_id: u64,
        /// The log contract's address.
        contract: Address,
    },
}

impl Ordering {
    /// Whether headers' submitters are authenticated by the ordering itself.
    pub fn authenticates_submitters(&self) -> bool {
        matches!(self, Ordering::Chain { .. })
    }
}

impl std::fmt::Display for Ordering {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ordering::Members => f.write_str("its members"),
            Ordering::Chain { chain_id, contract } => write!(
                f,
                "contract 0x{} on chain {chain_id}",
                alloy_primitives::hex::encode(contract)
            ),
        }
    }
}

/// Builds the hash a gateway signs over an attested entry (version 2):
/// the item count, then each item's kind and hash, in order.
pub struct AttestationHasher {
    keccak: alloy_primitives::Keccak256,
}

impl AttestationHasher {
    /// A hasher for an entry of `count` items.
    pub fn new(count: usize) -> Self {
        let mut keccak = alloy_primitives::Keccak256::new();
        keccak.update(DOMAIN);
        keccak.update((count as u32).to_le_bytes());
        Self { keccak }
    }

    /// Adds the next item: its kind byte and its [`item_hash`].
    pub fn item(&mut self, kind: u8, hash: &[u8; 32]) {
        self.keccak.update([kind]);
        self.keccak.update(hash);
    }

    /// The hash to sign.
    pub fn finish(self) -> [u8; 32] {
        self.keccak.finalize().0
    }
}

/// The hash an item contributes to its entry's attestation: for an
/// unsigned transaction its signing hash (which replay needs anyway), for
/// a signed one the Keccak-256 of its bytes, signature included. Taken over
/// the bytes as they lie, so an item that does not decode still has one.
pub fn item_hash(kind: u8, bytes: &[u8]) -> [u8; 32] {
    match kind {
        ATTESTED_ITEM => crate::sign::signing_hash_of_encoded(bytes),
        _ => alloy_primitives::keccak256(bytes).0,
    }
}

/// The hash a gateway signed over a version 1 entry's body (every byte
/// before the signature).
fn attestation_hash_v1(body: &[u8]) -> [u8; 32] {
    let mut hasher = alloy_primitives::Keccak256::new();
    hasher.update(DOMAIN_V1);
    hasher.update(body);
    hasher.finalize().0
}

/// An attested entry as its gateway made it.
#[derive(Debug, Clone)]
pub struct Attested {
    /// The entry's bytes.
    pub payload: Vec<u8>,
    /// The entry's signature (also the payload's last 65 bytes).
    pub signature: [u8; 65],
    /// The hash it signs.
    pub hash: [u8; 32],
}

/// Packs `items` into an attested entry signed by `gateway`.
pub fn encode_attested<'a, I>(items: I, gateway: &SigningKey) -> Result<Vec<u8>, SignatureError>
where
    I: IntoIterator<Item = &'a Item>,
    I::IntoIter: ExactSizeIterator,
{
    attest(items, gateway).map(|attested| attested.payload)
}

/// [`encode_attested`], also handing back the signature and the hash it
/// signs, so the gateway can tell its own replica that it made them.
pub fn attest<'a, I>(items: I, gateway: &SigningKey) -> Result<Attested, SignatureError>
where
    I: IntoIterator<Item = &'a Item>,
    I::IntoIter: ExactSizeIterator,
{
    attest_signing(items, |hash| sign_hash(hash, gateway))
}

/// Packs `items` and signs the attestation hash with `sign`.
fn attest_signing<'a, I>(
    items: I,
    sign: impl FnOnce([u8; 32]) -> Result<[u8; 65], SignatureError>,
) -> Result<Attested, SignatureError>
where
    I: IntoIterator<Item = &'a Item>,
    I::IntoIter: ExactSizeIterator,
{
    let encoded: Vec<(u8, Vec<u8>)> = items.into_iter().map(Item::encoded).collect();
    let hashes: Vec<[u8; 32]> = encoded
        .iter()
        .map(|(kind, bytes)| item_hash(*kind, bytes))
        .collect();
    let parts = encoded
        .iter()
        .map(|(kind, bytes)| (*kind, bytes.as_slice()));
    pack_attested(parts, &hashes, sign)
}

/// Packs `items` into an attested entry signed by `sign` (for example
/// [`crate::sign::sign_hash`] with the gateway's key, or a prepared
/// nonce's [`crate::presign::Presignature::sign`]), and hands back beside
/// it the entry as [`decode_attested`] reads it. That decoded form is made
/// from the items themselves: nothing is decoded, and each item is hashed
/// once (a signed item's signing hash, which replay compares, once more).
pub fn attest_canonical(
    items: Vec<CanonicalItem>,
    sign: impl FnOnce([u8; 32]) -> Result<[u8; 65], SignatureError>,
) -> Result<(Attested, DecodedAttested), SignatureError> {
    let hashes: Vec<[u8; 32]> = items
        .iter()
        .map(|item| item_hash(item.kind(), &item.bytes))
        .collect();
    let parts = items
        .iter()
        .map(|item| (item.kind(), item.bytes.as_slice()));
    let attested = pack_attested(parts, &hashes, sign)?;
    let decoded = items.into_iter().zip(hashes).map(|(item, hash)| {
        let hash = match &item.item {
            // What `decode_item` pairs a signed item with: its signing hash,
            // not the hash of its bytes the attestation covers.
            Item::Signed(signed) => crate::sign::signing_hash(&signed.tx),
            Item::Attested(_) => hash,
        };
        Ok((item.item, hash))
    });
    let decoded = DecodedAttested {
        items: decoded.collect(),
        signature: attested.signature,
        hash: attested.hash,
    };
    Ok((attested, decoded))
}

/// Writes an attested entry of `items` (kind and bytes each), whose
/// [`item_hash`]es are `hashes`, and signs its attestation with `sign`.
fn pack_attested<'b>(
    items: impl ExactSizeIterator<Item = (u8, &'b [u8])> + Clone,
    hashes: &[[u8; 32]],
    sign: impl FnOnce([u8; 32]) -> Result<[u8; 65], SignatureError>,
) -> Result<Attested, SignatureError> {
    let framing = 4 + 4 + 65;
    let size = framing
        + items
            .clone()
            .map(|(_, bytes)| 5 + bytes.len())
            .sum::<usize>();
    let mut w = Writer::with_capacity(size);
    w.fixed(ATTESTED_MAGIC);
    w.count(items.len());
    let mut attestation = AttestationHasher::new(items.len());
    for ((kind, bytes), hash) in items.zip(hashes) {
        attestation.item(kind, hash);
        w.u8(kind).bytes(bytes);
    }
    let mut payload = w.finish();
    let hash = attestation.finish();
    let signature = sign(hash)?;
    payload.extend_from_slice(&signature);
    Ok(Attested {
        payload,
        signature,
        hash,
    })
}

/// Packs `items` into a submitted entry: no signature, its unsigned items
/// vouched for by whoever the chain authenticates as the header's submitter
/// (valid only on a log a chain orders, see [`Ordering`]).
pub fn encode_submitted<'a, I>(items: I) -> Vec<u8>
where
    I: IntoIterator<Item = &'a Item>,
    I::IntoIter: ExactSizeIterator,
{
    let encoded: Vec<(u8, Vec<u8>)> = items.into_iter().map(Item::encoded).collect();
    pack_submitted(
        encoded
            .iter()
            .map(|(kind, bytes)| (*kind, bytes.as_slice())),
    )
}

/// [`encode_submitted`] of items that carry their bytes, without encoding
/// them again.
pub fn encode_submitted_canonical(items: &[CanonicalItem]) -> Vec<u8> {
    pack_submitted(
        items
            .iter()
            .map(|item| (item.kind(), item.bytes.as_slice())),
    )
}

/// Writes a submitted entry of `items` (kind and bytes each).
fn pack_submitted<'b>(items: impl ExactSizeIterator<Item = (u8, &'b [u8])>) -> Vec<u8> {
    let mut w = Writer::new();
    w.fixed(SUBMITTED_MAGIC);
    w.count(items.len());
    for (kind, bytes) in items {
        w.u8(kind).bytes(bytes);
    }
    w.finish()
}

/// An item as decoded: the item and its transaction's signing hash, or why
/// it did not decode.
pub type DecodedItem = Result<(Item, [u8; 32]), DecodeError>;

/// Decodes a submitted entry: its items, each on its own. Errors only when
/// the entry's framing is broken.
pub fn decode_submitted(payload: &[u8]) -> Result<Vec<DecodedItem>, DecodeError> {
    let mut r = Reader::new(payload);
    r.expect_magic(SUBMITTED_MAGIC, "submitted entry magic")?;
    let count = r.count("submitted entry", MAX_BATCH_TXNS)?;
    let mut items = Vec::with_capacity(count);
    for _ in 0..count {
        let kind = r.u8("item kind")?;
        let bytes = r.bytes("item", MAX_ITEM_BYTES)?;
        items.push(decode_item(kind, bytes, item_hash(kind, bytes)));
    }
    r.finish()?;
    Ok(items)
}

/// An attested entry taken apart: each item with the signing hash of its
/// transaction (or why it did not decode), and the entry's signature with
/// the hash it must sign.
#[derive(Debug, PartialEq, Eq)]
pub struct DecodedAttested {
    /// The items, each decoded on its own so one bad item hides no other.
    pub items: Vec<DecodedItem>,
    /// The entry's signature.
    pub signature: [u8; 65],
    /// The hash the signature must sign.
    pub hash: [u8; 32],
}

impl DecodedAttested {
    /// The entry's signer, recovered from its signature.
    pub fn gateway(&self) -> Result<Address, SignatureError> {
        recover_canonical(&self.signature, self.hash)
    }
}

/// Decodes an attested entry (either version), leaving its signer to
/// [`DecodedAttested::gateway`]. Errors only when the entry's framing is
/// broken.
pub fn decode_attested(payload: &[u8]) -> Result<DecodedAttested, DecodeError> {
    let body_len = payload
        .len()
        .checked_sub(65)
        .ok_or(DecodeError::Truncated {
            field: "attestation",
            needed: 65,
            available: payload.len(),
        })?;
    let (body, signature) = payload.split_at(body_len);
    let version_1 = body.starts_with(ATTESTED_MAGIC_V1);
    let mut r = Reader::new(body);
    let magic = if version_1 {
        ATTESTED_MAGIC_V1
    } else {
        ATTESTED_MAGIC
    };
    r.expect_magic(magic, "attested entry magic")?;
    let count = r.count("attested entry", MAX_BATCH_TXNS)?;
    let mut items = Vec::with_capacity(count);
    // Version 1 signed the body itself: no list of item hashes to build.
    let mut attestation = (!version_1).then(|| AttestationHasher::new(count));
    for _ in 0..count {
        let kind = r.u8("item kind")?;
        let bytes = r.bytes("item", MAX_ITEM_BYTES)?;
        let hash = item_hash(kind, bytes);
        if let Some(attestation) = &mut attestation {
            attestation.item(kind, &hash);
        }
        items.push(decode_item(kind, bytes, hash));
    }
    r.finish()?;
    let hash = match attestation {
        Some(attestation) => attestation.finish(),
        None => attestation_hash_v1(body),
    };
    let signature: [u8; 65] = signature.try_into().unwrap_or([0; 65]);
    Ok(DecodedAttested {
        items,
        signature,
        hash,
    })
}

/// One item and its transaction's signing hash, given the item's
/// [`item_hash`]. Decoding accepts only the canonical encoding, so an
/// unsigned item's hash, taken over the bytes as they came, is its
/// transaction's signing hash.
fn decode_item(kind: u8, bytes: &[u8], hash: [u8; 32]) -> DecodedItem {
    match kind {
        SIGNED_ITEM => {
            let signed = SignedTransaction::decode(bytes)?;
            let hash = crate::sign::signing_hash(&signed.tx);
            Ok((Item::Signed(signed), hash))
        }
        ATTESTED_ITEM => Ok((Item::Attested(Transaction::decode(bytes)?), hash)),
        tag => Err(DecodeError::BadTag {
            field: "item kind",
            tag,
        }),
    }
}

impl Genesis {
    /// The record's canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        let magic = match self.ordering {
            // A member-ordered log's genesis keeps the first encoding, so
            // logs founded before chains existed read the same.
            Ordering::Members => GENESIS_MAGIC,
            Ordering::Chain { .. } => GENESIS_MAGIC_CHAIN,
        };
        let mut w = Writer::new();
        w.fixed(magic).fixed(&self.admin);
        w.count(self.gateways.len());
        for gateway in &self.gateways {
            w.fixed(gateway);
        }
        if let Ordering::Chain { chain_id, contract } = self.ordering {
            w.u64(chain_id).fixed(&contract);
        }
        w.finish()
    }

    /// Parses canonical bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let chain = bytes.starts_with(GENESIS_MAGIC_CHAIN);
        let mut r = Reader::new(bytes);
        let magic = if chain {
            GENESIS_MAGIC_CHAIN
        } else {
            GENESIS_MAGIC
        };
        r.expect_magic(magic, "genesis magic")?;
        let admin = r.fixed("genesis admin")?;
        let count = r.count("genesis gateways", MAX_GENESIS_GATEWAYS)?;
        let gateways = (0..count)
            .map(|_| r.fixed("genesis gateway"))
            .collect::<Result<_, _>>()?;
        let ordering = match chain {
            false => Ordering::Members,
            true => Ordering::Chain {
                chain_id: r.u64("genesis chain id")?,
                contract: r.fixed("genesis contract")?,
            },
        };
        r.finish()?;
        Ok(Self {
            admin,
            gateways,
            ordering,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_storage_member_value_names_an_address_and_whether_it_drains() {
        let parse = parse_storage_member_value;
        assert_eq!(
            parse("127.0.0.1:7534"),
            Some(("127.0.0.1:7534".into(), false))
        );
        let draining = storage_member_value("127.0.0.1:7534", true);
        assert_eq!(parse(&draining), Some(("127.0.0.1:7534".into(), true)));
        let active = storage_member_value("h:1", false);
        assert_eq!(parse(&active), Some(("h:1".into(), false)));
        assert_eq!(parse(""), None);
        assert_eq!(parse(STORAGE_MEMBER_DRAINING), None);
        assert_eq!(parse("127.0.0.1:7534 leaving"), None);
    }
    use crate::testkit::{blank, signed, signing_key, txn_id};

    fn items() -> Vec<Item> {
        let mut unsigned = blank(txn_id(1), 0);
        unsigned.sender = [7; 20];
        vec![
            Item::Attested(unsigned),
            Item::Signed(signed(blank(txn_id(2), 0), &signing_key(3))),
        ]
    }

    #[test]
    fn an_attested_entry_round_trips_and_names_its_signer() {
        let gateway = signing_key(9);
        let entry = encode_attested(&items(), &gateway).unwrap();
        let decoded = decode_attested(&entry).unwrap();
        assert_eq!(decoded.gateway(), Ok(crate::address_of(&gateway)));
        let back: Vec<Item> = decoded.items.into_iter().map(|i| i.unwrap().0).collect();
        assert_eq!(back, items());
    }

    #[test]
    fn each_item_carries_its_transaction_s_signing_hash() {
        let entry = encode_attested(&items(), &signing_key(9)).unwrap();
        for item in decode_attested(&entry).unwrap().items {
            let (item, hash) = item.unwrap();
            assert_eq!(hash, crate::sign::signing_hash(item.tx()));
        }
    }

    #[test]
    fn a_changed_byte_changes_the_signer() {
        let gateway = signing_key(9);
        let mut entry = encode_attested(&items(), &gateway).unwrap();
        entry[20] ^= 1;
        let decoded = decode_attested(&entry).unwrap();
        assert_ne!(decoded.gateway(), Ok(crate::address_of(&gateway)));
    }

    #[test]
    fn reordering_items_or_changing_a_signed_item_s_signature_changes_the_signer() {
        let gateway = signing_key(9);
        let mut swapped = items();
        swapped.reverse();
        let entry = encode_attested(&swapped, &gateway).unwrap();
        let original = encode_attested(&items(), &gateway).unwrap();
        // The second entry's items under the first entry's signature.
        let mut forged = entry[..entry.len() - 65].to_vec();
        forged.extend_from_slice(&original[original.len() - 65..]);
        let decoded = decode_attested(&forged).unwrap();
        assert_ne!(decoded.gateway(), Ok(crate::address_of(&gateway)));

        let mut resigned = original.clone();
        let last_signature_byte = original.len() - 65 - 1;
        resigned[last_signature_byte] ^= 1;
        let decoded = decode_attested(&resigned).unwrap();
        assert_ne!(decoded.gateway(), Ok(crate::address_of(&gateway)));
    }

    /// A version 1 entry, built the way version 1 writers built it.
    fn encode_v1(items: &[Item], gateway: &SigningKey) -> Vec<u8> {
        let mut w = Writer::new();
        w.fixed(ATTESTED_MAGIC_V1);
        w.count(items.len());
        for item in items {
            match item {
                Item::Signed(signed) => w.u8(SIGNED_ITEM).bytes(&signed.encode()),
                Item::Attested(tx) => w.u8(ATTESTED_ITEM).bytes(&tx.encode()),
            };
        }
        let mut entry = w.finish();
        let signature = sign_hash(attestation_hash_v1(&entry), gateway).unwrap();
        entry.extend_from_slice(&signature);
        entry
    }

    #[test]
    fn a_version_1_entry_still_decodes_and_names_its_signer() {
        let gateway = signing_key(9);
        let decoded = decode_attested(&encode_v1(&items(), &gateway)).unwrap();
        assert_eq!(decoded.gateway(), Ok(crate::address_of(&gateway)));
        let back: Vec<Item> = decoded.items.into_iter().map(|i| i.unwrap().0).collect();
        assert_eq!(back, items());
    }

    #[test]
    fn a_version_1_signature_does_not_pass_for_version_2() {
        let gateway = signing_key(9);
        let v1 = encode_v1(&items(), &gateway);
        let mut relabelled = v1.clone();
        relabelled[..4].copy_from_slice(ATTESTED_MAGIC);
        let decoded = decode_attested(&relabelled).unwrap();
        assert_ne!(decoded.gateway(), Ok(crate::address_of(&gateway)));
    }

    #[test]
    fn a_submitted_entry_round_trips_without_a_signature() {
        let entry = encode_submitted(&items());
        assert!(entry.starts_with(SUBMITTED_MAGIC));
        let back: Vec<Item> = decode_submitted(&entry)
            .unwrap()
            .into_iter()
            .map(|i| i.unwrap().0)
            .collect();
        assert_eq!(back, items());
        let mut cut = entry.clone();
        cut.pop();
        assert!(decode_submitted(&cut).is_err());
    }

    #[test]
    fn broken_framing_is_a_typed_error() {
        assert!(decode_attested(b"OTA1").is_err());
        let mut entry = encode_attested(&items(), &signing_key(9)).unwrap();
        entry.insert(10, 0);
        assert!(decode_attested(&entry).is_err());
    }

    #[test]
    fn genesis_round_trips_within_its_limit() {
        let genesis = Genesis {
            admin: [1; 20],
            gateways: vec![[2; 20], [3; 20]],
            ordering: Ordering::Members,
        };
        assert!(genesis.encode().starts_with(GENESIS_MAGIC));
        assert_eq!(Genesis::decode(&genesis.encode()), Ok(genesis.clone()));
        let chained = Genesis {
            ordering: Ordering::Chain {
                chain_id: 31337,
                contract: [4; 20],
            },
            ..genesis
        };
        assert!(chained.encode().starts_with(GENESIS_MAGIC_CHAIN));
        assert_eq!(Genesis::decode(&chained.encode()), Ok(chained));
        let mut too_many = Writer::new();
        too_many.fixed(GENESIS_MAGIC).fixed(&[1; 20]);
        too_many.fixed(&(MAX_GENESIS_GATEWAYS as u32 + 1).to_le_bytes());
        assert!(matches!(
            Genesis::decode(&too_many.finish()),
            Err(DecodeError::TooMany { .. })
        ));
    }

    mod canonical {
        use super::super::*;
        use crate::record::{Read, Write};
        use crate::testkit::{signed, signing_key};
        use proptest::prelude::*;

        fn transaction() -> impl Strategy<Value = Transaction> {
            let bytes = || prop::collection::vec(any::<u8>(), 0..24);
            let read =
                (any::<[u8; 32]>(), bytes()).prop_map(|(stream, key)| Read::Key { stream, key });
            let write = (any::<[u8; 32]>(), bytes(), prop::option::of(bytes()))
                .prop_map(|(stream, key, value)| Write { stream, key, value });
            let reads = prop::collection::vec(read, 0..4);
            let writes = prop::collection::vec(write, 0..4);
            (
                any::<[u8; 16]>(),
                any::<[u8; 20]>(),
                any::<u64>(),
                reads,
                writes,
            )
                .prop_map(|(id, sender, read_version, reads, writes)| Transaction {
                    id,
                    sender,
                    read_version,
                    reads,
                    writes,
                    acl: vec![],
                })
        }

        /// Unsigned items mostly, a signed one now and then.
        fn item() -> impl Strategy<Value = Item> {
            (transaction(), 0u8..4).prop_map(|(tx, pick)| match pick {
                0 => Item::Signed(signed(tx, &signing_key(3))),
                _ => Item::Attested(tx),
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]
            #[test]
            fn entries_packed_from_carried_bytes_equal_those_encoded_afresh(
                items in prop::collection::vec(item(), 1..12),
            ) {
                let gateway = signing_key(9);
                let canonical: Vec<CanonicalItem> = items
                    .iter()
                    .map(|item| CanonicalItem::new(item.clone()).unwrap())
                    .collect();
                prop_assert_eq!(encode_submitted_canonical(&canonical), encode_submitted(&items));
                let signed: Vec<&SignedTransaction> =
                    canonical.iter().filter_map(CanonicalItem::signed).collect();
                let signed_bytes: Vec<&[u8]> = canonical
                    .iter()
                    .filter(|i| i.signed().is_some())
                    .map(CanonicalItem::bytes)
                    .collect();
                prop_assert_eq!(
                    crate::encode_encoded_batch(signed_bytes.into_iter()),
                    crate::encode_batch(signed)
                );
                let sign = |hash| crate::sign::sign_hash(hash, &gateway);
                let (attested, decoded) = attest_canonical(canonical, sign).unwrap();
                // Signatures are deterministic (RFC 6979): the same entry.
                prop_assert_eq!(&attested.payload, &encode_attested(&items, &gateway).unwrap());
                prop_assert_eq!(decode_attested(&attested.payload).unwrap(), decoded);
            }
        }

        #[test]
        fn received_bytes_make_the_item_they_decode_to() {
            let tx = crate::testkit::blank(crate::testkit::txn_id(4), 7);
            let item = CanonicalItem::decode_attested(tx.encode()).unwrap();
            assert_eq!(item.item(), &Item::Attested(tx.clone()));
            assert_eq!(item.encoded_len(), tx.encode().len());
            let signed_tx = signed(tx, &signing_key(5));
            let item = CanonicalItem::decode_signed(signed_tx.encode()).unwrap();
            assert_eq!(item.signed(), Some(&signed_tx));
            assert!(CanonicalItem::decode_attested(vec![0xff; 3]).is_err());
        }

        #[test]
        fn an_item_over_a_limit_is_refused_before_it_reaches_an_entry() {
            let mut tx = crate::testkit::blank(crate::testkit::txn_id(5), 0);
            let write = Write {
                stream: [1; 32],
                key: vec![1],
                value: None,
            };
            tx.writes = vec![write; crate::limits::MAX_WRITES + 1];
            assert!(matches!(
                CanonicalItem::new(Item::Attested(tx)),
                Err(ItemError::Decode(DecodeError::TooMany { .. }))
            ));
        }
    }
}
