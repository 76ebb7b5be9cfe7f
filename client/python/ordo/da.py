"""Blobs (docs/DA.md): disperse one under an owner's key, follow it to its
record, read it back, fetch its certificate. The same calls as the Rust
client's `ordo_client::da`."""

from __future__ import annotations

import struct
import time
from typing import Iterator, Optional

import blake3

from ordo import txn as t
from ordo.v1 import da_pb2, da_pb2_grpc

# Bytes per dispersal message (the node takes at most 1 MiB).
CHUNK_BYTES = 1 << 20
# How long a signed start stays good (the node refuses deadlines more than
# five minutes ahead).
START_VALIDITY_SECONDS = 120
# How often `wait_for_blob` asks.
POLL_SECONDS = 0.1

DISPERSE_DOMAIN = b"ordo/da-disperse/v1\0"

FINALIZED = da_pb2.BLOB_STATE_FINALIZED
FAILED = da_pb2.BLOB_STATE_FAILED


def dispersal_hash(node: bytes, owner: bytes, size: int, content_hash: bytes,
                   ttl_secs: int, deadline_unix_ms: int) -> bytes:
    """What a blob's owner signs to disperse it (docs/PROTOCOL.md, "Blobs")."""
    if len(node) != 20 or len(owner) != 20 or len(content_hash) != 32:
        raise ValueError("node and owner are 20 bytes, the content hash 32")
    return t.keccak256(DISPERSE_DOMAIN + node + owner + struct.pack("<Q", size) + content_hash
                       + struct.pack("<QQ", ttl_secs, deadline_unix_ms))


class Blobs:
    """The blob calls of one node, over a `Client`'s connection."""

    def __init__(self, client):
        self.client = client
        self.stub = da_pb2_grpc.DaStub(client.channel)

    def _messages(self, start: da_pb2.DisperseStart, blob: bytes) -> Iterator[da_pb2.DisperseRequest]:
        yield da_pb2.DisperseRequest(start=start)
        for offset in range(0, len(blob), CHUNK_BYTES):
            yield da_pb2.DisperseRequest(chunk=blob[offset:offset + CHUNK_BYTES])

    def disperse(self, secret: bytes, blob: bytes, ttl_secs: int = 0) -> da_pb2.BlobStatus:
        """Disperses `blob` owned by `secret`'s account; returns once the
        node holds it and knows its id. Follow it with `wait_for_blob`."""
        node = self.client.status().node_address
        owner = t.address_of(secret)
        content_hash = blake3.blake3(blob).digest()
        deadline = int(time.time() * 1000) + START_VALIDITY_SECONDS * 1000
        digest = dispersal_hash(node, owner, len(blob), content_hash, ttl_secs, deadline)
        start = da_pb2.DisperseStart(owner=owner, size=len(blob), content_hash=content_hash,
                                     ttl_secs=ttl_secs, deadline_unix_ms=deadline,
                                     signature=t.sign_hash(digest, secret))
        return self.stub.Disperse(self._messages(start, blob)).status

    def status(self, blob_id: bytes, owner: Optional[bytes] = None) -> da_pb2.BlobStatus:
        """Where a blob's dispersal stands (`owner`'s, or anyone's)."""
        return self.stub.Status(da_pb2.BlobRef(blob_id=blob_id, owner=owner or b""))

    def wait_for_blob(self, blob_id: bytes, owner: Optional[bytes] = None,
                      timeout: float = 600.0) -> da_pb2.BlobStatus:
        """Asks until the dispersal is finalized or failed, or `timeout` passes."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.status(blob_id, owner)
            if status.state in (FINALIZED, FAILED) or time.monotonic() >= deadline:
                return status
            time.sleep(POLL_SECONDS)

    def retrieve(self, blob_id: bytes, owner: Optional[bytes] = None) -> bytes:
        """The blob's bytes, checked by the node against its commitment."""
        runs = self.stub.Retrieve(da_pb2.BlobRef(blob_id=blob_id, owner=owner or b""))
        return b"".join(message.chunk for message in runs)

    def certificate(self, blob_id: bytes, owner: Optional[bytes] = None) -> bytes:
        """The blob's certificate (`ODT1` bytes); verify it with `ordo da verify`."""
        return self.stub.Certificate(da_pb2.BlobRef(blob_id=blob_id, owner=owner or b"")).certificate
