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
//! # Encoding (version 1), integers little-endian
//!
//! ```text
//! Attested := "OTA1" | count u32 | count x Item | signature[65]
//! Item     := 0x00 | Signed (len u32 | bytes)        signed by its sender
//!           | 0x01 | Transaction (len u32 | bytes)   vouched for by the gateway
//! signature = sign(keccak256("ordo/attested-entry/v1\0" || every byte before it))
//!
//! Genesis  := "OGN1" | admin[20] | count u32 | count x gateway[20]
//! ```
//!
//! A genesis record counts only as the log's first entry (seq 0); it makes
//! `admin` an admin of the [`SYSTEM_STREAM`] (the log's own admins, who
//! grant and revoke gateways) and each listed account a gateway. A log
//! without one has no gateways: every transaction in it is signed.

use crate::StreamId;
use crate::codec::{DecodeError, Reader, Writer};
use crate::limits::{MAX_BATCH_TXNS, MAX_TXN_BYTES};
use crate::record::{Address, SignedTransaction, Transaction};
use crate::sign::{SignatureError, SigningKey, recover_canonical, sign_hash};

/// Magic of an attested entry.
pub const ATTESTED_MAGIC: &[u8; 4] = b"OTA1";
/// Magic of a genesis record.
pub const GENESIS_MAGIC: &[u8; 4] = b"OGN1";

/// The stream whose facts are the log's own: its admins are the log's
/// admins, and gateway facts live in it. Not a value [`crate::stream_id`]
/// produces (those are BLAKE3 outputs), so no account can create it.
pub const SYSTEM_STREAM: StreamId = *b"ordo/system-stream/v1\0\0\0\0\0\0\0\0\0\0\0";

/// Most gateways a genesis record may name.
pub const MAX_GENESIS_GATEWAYS: usize = 256;

const DOMAIN: &[u8] = b"ordo/attested-entry/v1\0";
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
    /// The transaction, signed or not.
    pub fn tx(&self) -> &Transaction {
        match self {
            Item::Signed(signed) => &signed.tx,
            Item::Attested(tx) => tx,
        }
    }
}

/// The log's first entry: who administers the log, and its first gateways.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Genesis {
    /// Admin of the [`SYSTEM_STREAM`]: grants and revokes gateways.
    pub admin: Address,
    /// Accounts that are gateways from the start.
    pub gateways: Vec<Address>,
}

/// The hash a gateway signs over an attested entry's body (every byte
/// before the signature).
pub fn attestation_hash(body: &[u8]) -> [u8; 32] {
    let mut hasher = alloy_primitives::Keccak256::new();
    hasher.update(DOMAIN);
    hasher.update(body);
    hasher.finalize().0
}

/// Packs `items` into an attested entry signed by `gateway`.
pub fn encode_attested<'a, I>(items: I, gateway: &SigningKey) -> Result<Vec<u8>, SignatureError>
where
    I: IntoIterator<Item = &'a Item>,
    I::IntoIter: ExactSizeIterator,
{
    let items = items.into_iter();
    let mut w = Writer::new();
    w.fixed(ATTESTED_MAGIC);
    w.fixed(&(items.len() as u32).to_le_bytes());
    for item in items {
        match item {
            Item::Signed(signed) => w.u8(SIGNED_ITEM).bytes(&signed.encode()),
            Item::Attested(tx) => w.u8(ATTESTED_ITEM).bytes(&tx.encode()),
        };
    }
    let mut entry = w.finish();
    let signature = sign_hash(attestation_hash(&entry), gateway)?;
    entry.extend_from_slice(&signature);
    Ok(entry)
}

/// An attested entry taken apart: each item with the signing hash of its
/// transaction (or why it did not decode) and who signed the entry (or why
/// the signature is not valid).
#[derive(Debug)]
pub struct DecodedAttested {
    /// The items, each decoded on its own so one bad item hides no other.
    pub items: Vec<Result<(Item, [u8; 32]), DecodeError>>,
    /// The entry's signer.
    pub gateway: Result<Address, SignatureError>,
}

/// Decodes an attested entry and recovers its signer. Errors only when
/// the entry's framing is broken.
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
    let mut r = Reader::new(body);
    r.expect_magic(ATTESTED_MAGIC, "attested entry magic")?;
    let count = r.count("attested entry", MAX_BATCH_TXNS)?;
    let mut items = Vec::with_capacity(count);
    for _ in 0..count {
        let tag = r.u8("item kind")?;
        let bytes = r.bytes("item", MAX_TXN_BYTES + 100)?;
        items.push(decode_item(tag, bytes));
    }
    r.finish()?;
    let signature: [u8; 65] = signature.try_into().unwrap_or([0; 65]);
    let gateway = recover_canonical(&signature, attestation_hash(body));
    Ok(DecodedAttested { items, gateway })
}

/// One item and its transaction's signing hash. Decoding accepts only the
/// canonical encoding, so the hash is taken over the bytes as they came.
fn decode_item(tag: u8, bytes: &[u8]) -> Result<(Item, [u8; 32]), DecodeError> {
    match tag {
        SIGNED_ITEM => {
            let signed = SignedTransaction::decode(bytes)?;
            let hash = crate::sign::signing_hash(&signed.tx);
            Ok((Item::Signed(signed), hash))
        }
        ATTESTED_ITEM => {
            let tx = Transaction::decode(bytes)?;
            let hash = crate::sign::signing_hash_of_encoded(bytes);
            Ok((Item::Attested(tx), hash))
        }
        tag => Err(DecodeError::BadTag {
            field: "item kind",
            tag,
        }),
    }
}

impl Genesis {
    /// The record's canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.fixed(GENESIS_MAGIC).fixed(&self.admin);
        w.fixed(&(self.gateways.len() as u32).to_le_bytes());
        for gateway in &self.gateways {
            w.fixed(gateway);
        }
        w.finish()
    }

    /// Parses canonical bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        r.expect_magic(GENESIS_MAGIC, "genesis magic")?;
        let admin = r.fixed("genesis admin")?;
        let count = r.count("genesis gateways", MAX_GENESIS_GATEWAYS)?;
        let gateways = (0..count)
            .map(|_| r.fixed("genesis gateway"))
            .collect::<Result<_, _>>()?;
        r.finish()?;
        Ok(Self { admin, gateways })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        assert_eq!(decoded.gateway, Ok(crate::address_of(&gateway)));
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
        assert_ne!(decoded.gateway, Ok(crate::address_of(&gateway)));
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
        };
        assert_eq!(Genesis::decode(&genesis.encode()), Ok(genesis));
        let mut too_many = Writer::new();
        too_many.fixed(GENESIS_MAGIC).fixed(&[1; 20]);
        too_many.fixed(&(MAX_GENESIS_GATEWAYS as u32 + 1).to_le_bytes());
        assert!(matches!(
            Genesis::decode(&too_many.finish()),
            Err(DecodeError::TooMany { .. })
        ));
    }
}
