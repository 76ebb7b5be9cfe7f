//! The test vectors of docs/PROTOCOL.md (`proto/vectors/transactions.json`),
//! checked against this implementation: every client (Rust, Python,
//! TypeScript) checks the same file, so they all encode, hash, sign and
//! derive ids byte for byte alike.
//!
//! `ORDO_WRITE_VECTORS=1 cargo test --workspace --test protocol_vectors`
//! rewrites the file from the cases below (for a new case; an existing
//! vector must never change, or every deployed client breaks).

use ordo_txn::ids::hex;
use ordo_txn::testkit::signing_key;
use ordo_txn::{AclOp, Read, SignedTransaction, Transaction, Write, address_of, sign};
use serde_json::{Value, json};

fn vectors_path() -> std::path::PathBuf {
    let txn = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    txn.join("../proto/vectors/transactions.json")
}

fn stream(n: u8) -> [u8; 32] {
    [n; 32]
}

/// The transactions the vectors cover: every field and every variant.
fn cases() -> Vec<(&'static str, u8, Transaction)> {
    let base = |id: u8, read_version| ordo_txn::testkit::blank([id; 16], read_version);
    let (s, a) = (stream(0xab), [0x11; 20]);
    let reads = vec![
        Read::Key {
            stream: s,
            key: b"k".to_vec(),
        },
        Read::Range {
            stream: s,
            start: b"a".to_vec(),
            end: Some(b"m".to_vec()),
        },
        Read::Range {
            stream: s,
            start: vec![0x00, 0xff],
            end: None,
        },
    ];
    let writes = vec![
        Write {
            stream: s,
            key: b"greeting".to_vec(),
            value: Some(b"hello".to_vec()),
        },
        Write {
            stream: s,
            key: vec![0xff, 0x00, 0x01],
            value: None,
        },
        Write {
            stream: s,
            key: b"empty".to_vec(),
            value: Some(vec![]),
        },
    ];
    let key = b"special".to_vec();
    let acl = vec![
        AclOp::CreateStream {
            name: b"orders".to_vec(),
        },
        AclOp::GrantAdmin {
            stream: s,
            account: a,
        },
        AclOp::RenounceAdmin { stream: s },
        AclOp::SetKeySpecial {
            stream: s,
            key: key.clone(),
        },
        AclOp::SetKeyNormal {
            stream: s,
            key: key.clone(),
        },
        AclOp::GrantWriter {
            stream: s,
            account: a,
        },
        AclOp::RevokeWriter {
            stream: s,
            account: a,
        },
        AclOp::RenounceWriter { stream: s },
        AclOp::GrantSpecialWriter {
            stream: s,
            key: key.clone(),
            account: a,
        },
        AclOp::RevokeSpecialWriter {
            stream: s,
            key: key.clone(),
            account: a,
        },
        AclOp::RenounceSpecialWriter { stream: s, key },
        AclOp::GrantGateway { account: a },
        AclOp::RevokeGateway { account: a },
    ];
    vec![
        ("empty", 1, base(0x01, 0)),
        (
            "create_stream",
            1,
            Transaction::create_stream([0x02; 16], 7, b"default".to_vec()),
        ),
        (
            "reads_and_writes",
            2,
            Transaction {
                reads,
                writes,
                ..base(0x03, 42)
            },
        ),
        (
            "every_acl_operation",
            3,
            Transaction {
                acl,
                ..base(0x04, u64::MAX)
            },
        ),
    ]
}

fn read_json(read: &Read) -> Value {
    match read {
        Read::Key { stream, key } => json!({"type": "key", "stream": hex(stream), "key": hex(key)}),
        Read::Range { stream, start, end } => json!({
            "type": "range", "stream": hex(stream), "start": hex(start),
            "end": end.as_ref().map(|e| hex(e)),
        }),
    }
}

fn write_json(write: &Write) -> Value {
    let value = write.value.as_ref().map(|v| hex(v));
    json!({"stream": hex(&write.stream), "key": hex(&write.key), "value": value})
}

fn acl_json(op: &AclOp) -> Value {
    let mut fields = serde_json::Map::new();
    fields.insert("op".into(), json!(op.name()));
    let (stream, key, account, name) = match op {
        AclOp::CreateStream { name } => (None, None, None, Some(name)),
        AclOp::Mining(_) => unreachable!("clients build no mining operations: storage members do"),
        AclOp::Retention(_) => unreachable!("the vectors hold no retention operations"),
        AclOp::Da(_) => unreachable!("the vectors hold no blob operations"),
        AclOp::GrantGateway { account } | AclOp::RevokeGateway { account } => {
            (None, None, Some(account), None)
        }
        AclOp::GrantAdmin { stream, account }
        | AclOp::GrantWriter { stream, account }
        | AclOp::RevokeWriter { stream, account } => (Some(stream), None, Some(account), None),
        AclOp::RenounceAdmin { stream } | AclOp::RenounceWriter { stream } => {
            (Some(stream), None, None, None)
        }
        AclOp::SetKeySpecial { stream, key }
        | AclOp::SetKeyNormal { stream, key }
        | AclOp::RenounceSpecialWriter { stream, key } => (Some(stream), Some(key), None, None),
        AclOp::GrantSpecialWriter {
            stream,
            key,
            account,
        }
        | AclOp::RevokeSpecialWriter {
            stream,
            key,
            account,
        } => (Some(stream), Some(key), Some(account), None),
    };
    let parts = [
        ("name", name.map(|n| hex(n))),
        ("stream", stream.map(|s| hex(s))),
        ("key", key.map(|k| hex(k))),
        ("account", account.map(|a| hex(a))),
    ];
    for (field, value) in parts {
        if let Some(value) = value {
            fields.insert(field.into(), json!(value));
        }
    }
    Value::Object(fields)
}

/// One vector: the inputs in structured form, then every derived byte string.
fn vector(name: &str, key_byte: u8, tx: Transaction) -> Value {
    let key = signing_key(key_byte);
    let signed: SignedTransaction = sign(tx, &key).expect("test keys sign");
    let tx = &signed.tx;
    json!({
        "name": name,
        "secret_key": hex(&[key_byte; 32]),
        "sender": hex(&address_of(&key)),
        "transaction": {
            "id": hex(&tx.id),
            "read_version": tx.read_version.to_string(),
            "reads": tx.reads.iter().map(read_json).collect::<Vec<_>>(),
            "writes": tx.writes.iter().map(write_json).collect::<Vec<_>>(),
            "acl": tx.acl.iter().map(acl_json).collect::<Vec<_>>(),
        },
        "encoded": hex(&tx.encode()),
        "signing_hash": hex(&ordo_txn::sign::signing_hash(tx)),
        "signature": hex(&signed.signature),
        "signed": hex(&signed.encode()),
    })
}

fn stream_ids() -> Vec<Value> {
    [(1u8, &b"default"[..]), (2, b""), (3, &[0xff, 0x00][..])]
        .iter()
        .map(|&(key_byte, name)| {
            let creator = address_of(&signing_key(key_byte));
            json!({"creator": hex(&creator), "name": hex(name), "stream_id": hex(&ordo_txn::stream_id(&creator, name))})
        })
        .collect()
}

/// Session proofs: what a client signs to open a session (docs/PROTOCOL.md).
fn session_proofs() -> Vec<Value> {
    [
        (4u8, [0x21u8; 20], [0x5au8; 32], 1_790_000_000_000u64),
        (5, [0; 20], [0xff; 32], u64::MAX),
    ]
    .iter()
    .map(|&(key_byte, node, nonce, expires)| {
        let hash = ordo_txn::sign::session_proof_hash(&node, &nonce, expires);
        let signature = ordo_txn::sign::sign_hash(hash, &signing_key(key_byte)).expect("signs");
        json!({
            "secret_key": hex(&[key_byte; 32]),
            "node": hex(&node),
            "nonce": hex(&nonce),
            "expires_unix_ms": expires.to_string(),
            "hash": hex(&hash),
            "signature": hex(&signature),
        })
    })
    .collect()
}

fn expected() -> Value {
    json!({
        "format": 1,
        "transactions": cases().into_iter().map(|(n, k, tx)| vector(n, k, tx)).collect::<Vec<_>>(),
        "stream_ids": stream_ids(),
        "session_proofs": session_proofs(),
    })
}

#[test]
fn this_implementation_matches_the_published_vectors() {
    let expected = expected();
    if std::env::var_os("ORDO_WRITE_VECTORS").is_some() {
        let text = serde_json::to_string_pretty(&expected).expect("serializes") + "\n";
        std::fs::write(vectors_path(), text).expect("writes the vectors");
    }
    let text = std::fs::read_to_string(vectors_path()).expect("the vectors file exists");
    let published: Value = serde_json::from_str(&text).expect("the vectors are JSON");
    assert_eq!(
        published, expected,
        "encodings, hashes, signatures or ids changed"
    );
}

#[test]
fn every_published_encoding_decodes_to_its_transaction() {
    for (name, key_byte, tx) in cases() {
        let signed = sign(tx, &signing_key(key_byte)).expect("signs");
        let decoded = SignedTransaction::decode(&signed.encode()).expect("decodes");
        assert_eq!(decoded, signed, "{name}");
        assert_eq!(ordo_txn::verify(&decoded), Ok(()), "{name}");
    }
}
