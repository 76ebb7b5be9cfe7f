"""The published test vectors (proto/vectors/transactions.json): this
client must derive every address, encoding, hash, signature and stream id
byte for byte."""

import json
import pathlib

from ordo import txn as t

VECTORS = pathlib.Path(__file__).resolve().parents[3] / "proto" / "vectors" / "transactions.json"


def _hex(value):
    return None if value is None else bytes.fromhex(value)


def _read(spec):
    if spec["type"] == "key":
        return t.ReadKey(_hex(spec["stream"]), _hex(spec["key"]))
    return t.ReadRange(_hex(spec["stream"]), _hex(spec["start"]), _hex(spec["end"]))


def _acl(spec):
    fields = {name: _hex(spec.get(name)) for name in ("name", "stream", "key", "account")}
    return t.AclOp(spec["op"], **fields)


def _transaction(spec):
    return t.Transaction(
        id=_hex(spec["id"]),
        read_version=int(spec["read_version"]),
        reads=[_read(r) for r in spec["reads"]],
        writes=[t.Write(_hex(w["stream"]), _hex(w["key"]), _hex(w["value"])) for w in spec["writes"]],
        acl=[_acl(a) for a in spec["acl"]],
    )


def test_every_transaction_vector_is_reproduced():
    vectors = json.loads(VECTORS.read_text())
    assert vectors["format"] == 1
    assert vectors["transactions"], "the file holds vectors"
    for vector in vectors["transactions"]:
        secret = bytes.fromhex(vector["secret_key"])
        assert t.address_of(secret).hex() == vector["sender"], vector["name"]
        tx = _transaction(vector["transaction"])
        signed = t.sign(tx, secret)
        assert t.encode(tx).hex() == vector["encoded"], vector["name"]
        assert t.signing_hash(tx).hex() == vector["signing_hash"], vector["name"]
        assert signed[-65:].hex() == vector["signature"], vector["name"]
        assert signed.hex() == vector["signed"], vector["name"]


def test_every_stream_id_vector_is_reproduced():
    vectors = json.loads(VECTORS.read_text())
    for vector in vectors["stream_ids"]:
        derived = t.stream_id(bytes.fromhex(vector["creator"]), bytes.fromhex(vector["name"]))
        assert derived.hex() == vector["stream_id"]


def test_every_session_proof_vector_is_reproduced():
    vectors = json.loads(VECTORS.read_text())
    assert vectors["session_proofs"], "the file holds session proofs"
    for vector in vectors["session_proofs"]:
        digest = t.session_proof_hash(
            bytes.fromhex(vector["node"]), bytes.fromhex(vector["nonce"]), int(vector["expires_unix_ms"])
        )
        assert digest.hex() == vector["hash"]
        assert t.sign_hash(digest, bytes.fromhex(vector["secret_key"])).hex() == vector["signature"]
