"""Transactions as ordo's protocol defines them (docs/PROTOCOL.md): the
canonical encoding, the signing hash, secp256k1 signatures, addresses and
stream ids. Pure functions; nothing here talks to a node."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import List, Optional, Union

import blake3
import coincurve
from Crypto.Hash import keccak

FORMAT_VERSION = 1
SIGNING_DOMAIN = b"ordo/txn/v1\x00"
STREAM_ID_KEY = b"ordo/txn/stream-id/v1..........."

# Limits (docs/PROTOCOL.md); the node enforces them, checking here only
# saves a round trip.
MAX_KEY_BYTES = 4096
MAX_VALUE_BYTES = 1024 * 1024
MAX_READS = 4096
MAX_WRITES = 4096
MAX_ACL_OPS = 256


def keccak256(data: bytes) -> bytes:
    """Keccak-256 as Ethereum uses it (not NIST SHA3-256)."""
    return keccak.new(digest_bits=256, data=data).digest()


def address_of(secret: bytes) -> bytes:
    """The 20-byte address of a 32-byte secret key."""
    public = coincurve.PrivateKey(secret).public_key.format(compressed=False)
    return keccak256(public[1:])[12:]


def stream_id(creator: bytes, name: bytes) -> bytes:
    """The id of the stream `creator` makes under `name`."""
    return blake3.blake3(creator + name, key=STREAM_ID_KEY).digest()


@dataclass(frozen=True)
class ReadKey:
    """A read of one key."""

    stream: bytes
    key: bytes


@dataclass(frozen=True)
class ReadRange:
    """A read of every key from `start` up to `end` (exclusive; None: to the end)."""

    stream: bytes
    start: bytes
    end: Optional[bytes] = None


Read = Union[ReadKey, ReadRange]


@dataclass(frozen=True)
class Write:
    """A put (`value` set, possibly empty) or a delete (`value` None)."""

    stream: bytes
    key: bytes
    value: Optional[bytes]


# Access-control operations: name -> (tag, fields in wire order).
ACL_OPS = {
    "create_stream": (0x01, ("name",)),
    "grant_admin": (0x10, ("stream", "account")),
    "renounce_admin": (0x11, ("stream",)),
    "set_key_special": (0x20, ("stream", "key")),
    "set_key_normal": (0x21, ("stream", "key")),
    "grant_writer": (0x30, ("stream", "account")),
    "revoke_writer": (0x31, ("stream", "account")),
    "renounce_writer": (0x32, ("stream",)),
    "grant_special_writer": (0x40, ("stream", "key", "account")),
    "revoke_special_writer": (0x41, ("stream", "key", "account")),
    "renounce_special_writer": (0x42, ("stream", "key")),
    "grant_gateway": (0x50, ("account",)),
    "revoke_gateway": (0x51, ("account",)),
}

# Fields written as a length and bytes; the others are fixed-size ids.
_VARIABLE = {"name", "key"}
_FIXED = {"stream": 32, "account": 20}


@dataclass(frozen=True)
class AclOp:
    """One access-control operation (docs/ACL.md), e.g.
    AclOp("grant_writer", stream=s, account=a)."""

    op: str
    name: Optional[bytes] = None
    stream: Optional[bytes] = None
    key: Optional[bytes] = None
    account: Optional[bytes] = None


@dataclass
class Transaction:
    """A transaction before signing; `sign` sets its sender."""

    id: bytes
    read_version: int
    reads: List[Read] = field(default_factory=list)
    writes: List[Write] = field(default_factory=list)
    acl: List[AclOp] = field(default_factory=list)
    sender: bytes = b"\x00" * 20


def _bytes(value: bytes) -> bytes:
    return struct.pack("<I", len(value)) + value


def _fixed(value: Optional[bytes], size: int, what: str) -> bytes:
    if value is None or len(value) != size:
        raise ValueError(f"{what} must be {size} bytes")
    return value


def _encode_read(read: Read) -> bytes:
    if isinstance(read, ReadKey):
        return b"\x00" + _fixed(read.stream, 32, "stream") + _bytes(read.key)
    out = b"\x01" + _fixed(read.stream, 32, "stream") + _bytes(read.start)
    if read.end is None:
        return out + b"\x00"
    if read.end < read.start:
        raise ValueError("a range read must not end before it starts")
    return out + b"\x01" + _bytes(read.end)


def _encode_write(write: Write) -> bytes:
    head = _fixed(write.stream, 32, "stream") + _bytes(write.key)
    if write.value is None:
        return b"\x00" + head
    return b"\x01" + head + _bytes(write.value)


def _encode_acl(op: AclOp) -> bytes:
    if op.op not in ACL_OPS:
        raise ValueError(f"unknown ACL operation {op.op!r}")
    tag, fields = ACL_OPS[op.op]
    out = bytes([tag])
    for name in fields:
        value = getattr(op, name)
        if name in _VARIABLE:
            if value is None:
                raise ValueError(f"{op.op} needs {name}")
            out += _bytes(value)
        else:
            out += _fixed(value, _FIXED[name], name)
    return out


def encode(tx: Transaction) -> bytes:
    """The canonical encoding of a transaction."""
    _fixed(tx.id, 16, "id")
    out = bytes([FORMAT_VERSION]) + tx.id + _fixed(tx.sender, 20, "sender")
    out += struct.pack("<Q", tx.read_version)
    for items, encoder in ((tx.reads, _encode_read), (tx.writes, _encode_write), (tx.acl, _encode_acl)):
        out += struct.pack("<I", len(items)) + b"".join(encoder(item) for item in items)
    return out


def signing_hash(tx: Transaction) -> bytes:
    """The hash a sender signs: keccak256(domain || encoding)."""
    return keccak256(SIGNING_DOMAIN + encode(tx))


def sign_hash(digest: bytes, secret: bytes) -> bytes:
    """r || s || v (v 27 or 28) over a 32-byte hash: ordo's signature form."""
    recoverable = coincurve.PrivateKey(secret).sign_recoverable(digest, hasher=None)
    # coincurve returns r || s || recovery id (0 or 1), s already low.
    return recoverable[:64] + bytes([27 + recoverable[64]])


def sign(tx: Transaction, secret: bytes) -> bytes:
    """Sets the sender to the key's address, signs, and returns the signed
    transaction's bytes (what Txn.Commit takes)."""
    tx.sender = address_of(secret)
    return _bytes(encode(tx)) + sign_hash(signing_hash(tx), secret)


SESSION_DOMAIN = b"ordo/session/v1\0"


def session_proof_hash(node: bytes, nonce: bytes, expires_unix_ms: int) -> bytes:
    """What a client signs to open a session (docs/PROTOCOL.md, "Sessions")."""
    _fixed(node, 20, "node")
    _fixed(nonce, 32, "nonce")
    return keccak256(SESSION_DOMAIN + node + nonce + struct.pack("<Q", expires_unix_ms))
