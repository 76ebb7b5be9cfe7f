"""Blobs through a real node from Python: dispersed, recorded, read back
byte for byte, certified; a start signed by another key is refused."""

import time

import blake3
import grpc
import pytest

from ordo import address_of
from ordo.client import Client
from ordo.da import FINALIZED, Blobs, dispersal_hash
from ordo.txn import sign_hash
from ordo.v1 import da_pb2

DAVE = bytes([11]) * 32
EVE = bytes([12]) * 32


def test_a_blob_round_trips_and_has_a_certificate(node):
    client = Client(node)
    blobs = Blobs(client)
    blob = bytes(range(256)) * 4000 + b"tail"
    accepted = blobs.disperse(DAVE, blob)
    done = blobs.wait_for_blob(accepted.blob_id, address_of(DAVE))
    assert done.state == FINALIZED, done.reason
    assert done.size == len(blob) and done.owner == address_of(DAVE)
    assert blobs.retrieve(accepted.blob_id) == blob
    assert blobs.certificate(accepted.blob_id)[:4] == b"ODT1"
    client.close()


def test_a_start_signed_by_another_key_is_refused(node):
    client = Client(node)
    blobs = Blobs(client)
    blob = b"forged"
    content_hash = blake3.blake3(blob).digest()
    deadline = int(time.time() * 1000) + 60_000
    node_address = client.status().node_address
    # EVE signs a start claiming DAVE as the owner: the node recovers EVE.
    digest = dispersal_hash(node_address, address_of(DAVE), len(blob), content_hash, 0, deadline)
    start = da_pb2.DisperseStart(owner=address_of(DAVE), size=len(blob), content_hash=content_hash,
                                 deadline_unix_ms=deadline, signature=sign_hash(digest, EVE))
    with pytest.raises(grpc.RpcError) as refused:
        blobs.stub.Disperse(iter([da_pb2.DisperseRequest(start=start),
                                  da_pb2.DisperseRequest(chunk=blob)]))
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    client.close()


def test_the_dispersal_hash_names_every_field():
    base = dict(node=b"\1" * 20, owner=b"\2" * 20, size=5, content_hash=b"\3" * 32,
                ttl_secs=0, deadline_unix_ms=7)
    first = dispersal_hash(**base)
    for field, other in [("size", 6), ("ttl_secs", 1), ("deadline_unix_ms", 8),
                         ("node", b"\4" * 20)]:
        assert dispersal_hash(**{**base, field: other}) != first
    with pytest.raises(ValueError):
        dispersal_hash(**{**base, "owner": b"\2" * 19})
