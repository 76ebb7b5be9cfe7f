"""Sessions against a real node: the key proves itself once, commits go
unsigned and are attested by the node; a session cannot commit as anyone
else; `signed=True` still signs every transaction."""

import queue

import grpc
import pytest

from ordo import AclOp, Transaction, Write, address_of, stream_id
from ordo import txn as t
from ordo.client import Client, Session, fresh_id
from ordo.v1 import kv_pb2

ALICE = bytes([7]) * 32
BOB = bytes([8]) * 32


def _create(client, secret, name):
    tx = Transaction(fresh_id(), client.begin(), acl=[AclOp("create_stream", name=name)])
    assert client.commit_as(tx, secret).outcome == "committed"
    return stream_id(address_of(secret), name)


def test_a_session_commits_as_its_account_and_reads_back(node):
    client = Client(node)
    stream = _create(client, ALICE, b"py-session")
    _, version = client.transact(ALICE, lambda tx: tx.put(stream, b"k", b"v"))
    assert version > 0
    assert client.get(stream, b"k", min_version=version) == b"v"
    assert address_of(ALICE) in client._sessions, "the commit went on a session"
    client.close()


def test_a_session_refuses_a_transaction_naming_another_sender(node):
    client = Client(node)
    session = Session(client, ALICE)
    tx = Transaction(fresh_id(), 0, writes=[Write(bytes(32), b"k", b"v")])
    # Session.commit sets the sender; go around it to name Bob.
    tx.sender = address_of(BOB)
    commit = kv_pb2.SessionCommit(request_id=99, transaction=t.encode(tx))
    session._requests.put(kv_pb2.SessionRequest(commit=commit))
    answer = next(session._responses).committed
    assert answer.error_code == grpc.StatusCode.PERMISSION_DENIED.value[0]
    session.close()
    client.close()


def test_signed_mode_signs_every_transaction(node):
    client = Client(node, signed=True)
    stream = _create(client, BOB, b"py-signed")
    client.transact(BOB, lambda tx: tx.put(stream, b"k", b"v"))
    assert not client._sessions, "no session was opened"
    client.close()


def test_a_forged_session_proof_is_refused(node):
    client = Client(node)
    requests = queue.Queue()
    responses = client.txn.Session(iter(requests.get, None))
    challenge = next(responses).challenge
    proof = t.session_proof_hash(challenge.node, challenge.nonce, challenge.expires_unix_ms)
    forged = kv_pb2.SessionOpen(account=address_of(BOB), signature=t.sign_hash(proof, ALICE))
    requests.put(kv_pb2.SessionRequest(open=forged))
    with pytest.raises(grpc.RpcError) as refused:
        next(responses)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED, refused.value.details()
    requests.put(None)
    client.close()
