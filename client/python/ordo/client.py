"""A connection to one ordo node: reads at a version, commits, and
`transact`, which runs a function as one serializable transaction and
retries it on conflicts with the same policy as the Rust client."""

from __future__ import annotations

import itertools
import os
import queue
import struct
import time
from typing import Callable, Dict, List, Optional, Tuple, TypeVar

import grpc

from ordo import txn as t
from ordo.v1 import kv_pb2, kv_pb2_grpc, status_pb2, status_pb2_grpc

# Retry policy (docs/PROTOCOL.md), the Rust client's too.
MAX_ATTEMPTS = 10
FIRST_BACKOFF_SECONDS = 0.005
MAX_BACKOFF_SECONDS = 0.5
RETRYABLE = {"conflict", "too_old"}

T = TypeVar("T")

_COUNTER = itertools.count()


def fresh_id() -> bytes:
    """A transaction id that never repeats for this sender: nanosecond time
    mixed with the process id, then a counter."""
    mixed = (time.time_ns() ^ (os.getpid() << 40)) & (2**64 - 1)
    return struct.pack(">QQ", mixed, next(_COUNTER))


class Aborted(Exception):
    """The log decided against the transaction for a reason retrying cannot fix."""

    def __init__(self, response: kv_pb2.CommitResponse):
        super().__init__(f"transaction aborted ({response.outcome}): {response.message}")
        self.response = response


class RetriesExhausted(Exception):
    """Every attempt lost a conflict."""


# Metadata naming the oldest version a node still reads at, on a refusal
# of a read below the log's retention horizon (docs/PROTOCOL.md).
OLDEST_VERSION_METADATA = "ordo-oldest-version"


class Compacted(Exception):
    """The version asked for is below the log's retention horizon: that
    history is no longer kept. Read at `oldest` or later."""

    def __init__(self, oldest: int, message: str):
        super().__init__(f"compacted: {message}")
        self.oldest = oldest


def _compacted(error: grpc.RpcError) -> Optional[Compacted]:
    """The typed form of a refusal below the horizon, if `error` is one."""
    if error.code() != grpc.StatusCode.OUT_OF_RANGE:
        return None
    for key, value in error.trailing_metadata() or ():
        if key == OLDEST_VERSION_METADATA:
            return Compacted(int(value), error.details())
    return None


class TxContext:
    """A transaction being built by a `transact` function: reads at one
    snapshot (they join the read set), buffered writes and ACL operations."""

    def __init__(self, client: "Client", snapshot: int):
        self.client = client
        self.snapshot = snapshot
        self.reads: List[t.Read] = []
        self.writes: Dict[Tuple[bytes, bytes], Optional[bytes]] = {}
        self.acl: List[t.AclOp] = []

    def get(self, stream: bytes, key: bytes) -> Optional[bytes]:
        """This transaction's own write of `key` if it made one, else the
        value at the snapshot."""
        if (stream, key) in self.writes:
            return self.writes[(stream, key)]
        self.reads.append(t.ReadKey(stream, key))
        return self.client.get(stream, key, version=self.snapshot)

    def put(self, stream: bytes, key: bytes, value: bytes) -> None:
        self.writes[(stream, key)] = value

    def delete(self, stream: bytes, key: bytes) -> None:
        self.writes[(stream, key)] = None

    def add_acl(self, op: t.AclOp) -> None:
        self.acl.append(op)

    def transaction(self) -> t.Transaction:
        writes = [t.Write(s, k, v) for (s, k), v in sorted(self.writes.items())]
        return t.Transaction(fresh_id(), self.snapshot, self.reads, writes, self.acl)


class SessionRefused(Exception):
    """The node refused one commit of a session (its gRPC code and why)."""

    def __init__(self, code: int, message: str):
        super().__init__(f"commit refused (gRPC code {code}): {message}")
        self.code = code


class Session:
    """A `Txn.Session` stream: the key proves itself once, then each commit
    goes unsigned (docs/PROTOCOL.md, "Sessions"). One commit at a time;
    the session ends with `close` or when the stream breaks."""

    def __init__(self, client: "Client", secret: bytes):
        self.account = t.address_of(secret)
        self._requests: "queue.Queue[Optional[kv_pb2.SessionRequest]]" = queue.Queue()
        self._responses = client.txn.Session(iter(self._requests.get, None))
        self._next_id = itertools.count()
        challenge = next(self._responses).challenge
        proof = t.session_proof_hash(challenge.node, challenge.nonce, challenge.expires_unix_ms)
        opening = kv_pb2.SessionOpen(account=self.account, signature=t.sign_hash(proof, secret))
        self._requests.put(kv_pb2.SessionRequest(open=opening))
        if not next(self._responses).HasField("opened"):
            raise RuntimeError("session protocol: the node did not confirm the session")

    def commit(self, tx: t.Transaction) -> kv_pb2.CommitResponse:
        """Commits `tx` as the session's account and returns the decision."""
        tx.sender = self.account
        request_id = next(self._next_id)
        commit = kv_pb2.SessionCommit(request_id=request_id, transaction=t.encode(tx))
        self._requests.put(kv_pb2.SessionRequest(commit=commit))
        answer = next(self._responses).committed
        if answer.request_id != request_id:
            raise RuntimeError("session protocol: an answer to another commit")
        if answer.error_code:
            raise SessionRefused(answer.error_code, answer.error)
        return answer.response

    def close(self) -> None:
        self._requests.put(None)
        self._responses.cancel()


class Client:
    """A connection to one node (`host:port`). By default commits go on a
    session per key (one signature per session); `signed=True` signs every
    transaction instead, trusting no node to vouch for the sender."""

    def __init__(self, endpoint: str = "127.0.0.1:7420", signed: bool = False):
        target = endpoint.removeprefix("http://")
        self.channel = grpc.insecure_channel(target)
        self.kv = kv_pb2_grpc.KvStub(self.channel)
        self.txn = kv_pb2_grpc.TxnStub(self.channel)
        self.status_stub = status_pb2_grpc.StatusStub(self.channel)
        self.signed = signed
        self._sessions: Dict[bytes, Session] = {}

    def close(self) -> None:
        for session in self._sessions.values():
            session.close()
        self.channel.close()

    def session(self, secret: bytes) -> Optional[Session]:
        """The open session of `secret`'s account (opened on first use), or
        None when the node is not a gateway (then commits are signed)."""
        account = t.address_of(secret)
        if account not in self._sessions:
            try:
                self._sessions[account] = Session(self, secret)
            except grpc.RpcError as error:
                if error.code() != grpc.StatusCode.FAILED_PRECONDITION:
                    raise
                self.signed = True
                return None
        return self._sessions[account]

    def commit_as(self, tx: t.Transaction, secret: bytes) -> kv_pb2.CommitResponse:
        """Commits `tx` as `secret`'s account: on its session, or signed."""
        for attempt in range(2):
            session = None if self.signed else self.session(secret)
            if session is None:
                return self.commit(t.sign(tx, secret))
            try:
                return session.commit(tx)
            except grpc.RpcError:
                # The stream broke: resending the same transaction on a new
                # session applies it at most once (ids are idempotent).
                del self._sessions[session.account]
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")

    def status(self) -> status_pb2.GetStatusResponse:
        return self.status_stub.GetStatus(status_pb2.GetStatusRequest())

    def begin(self) -> int:
        """The newest applied version: a snapshot to read at."""
        return self.txn.Begin(kv_pb2.BeginRequest()).version

    def get(self, stream: bytes, key: bytes, version: int = 0, min_version: int = 0) -> Optional[bytes]:
        """The value of `key` at `version` (0: latest), waiting for `min_version`."""
        request = kv_pb2.GetRequest(stream=stream, key=key, version=version, min_version=min_version)
        try:
            answer = self.kv.Get(request)
        except grpc.RpcError as error:
            raise _compacted(error) or error
        return answer.value if answer.found else None

    def commit(self, signed: bytes) -> kv_pb2.CommitResponse:
        """Sends signed transaction bytes (see `ordo.txn.sign`) and returns the decision."""
        return self.txn.Commit(kv_pb2.CommitRequest(transaction=signed))

    def transact(self, secret: bytes, body: Callable[[TxContext], T]) -> Tuple[T, int]:
        """Runs `body` as one serializable transaction of `secret`'s account;
        returns its result and the commit version. `body` may run several
        times (after a conflict or a too-old snapshot) and must have no
        effects outside the transaction."""
        backoff = FIRST_BACKOFF_SECONDS
        for attempt in range(1, MAX_ATTEMPTS + 1):
            context = TxContext(self, self.begin())
            value = body(context)
            decided = self.commit_as(context.transaction(), secret)
            if decided.outcome == "committed":
                return value, decided.version
            if decided.outcome not in RETRYABLE:
                raise Aborted(decided)
            if attempt < MAX_ATTEMPTS:
                time.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
        raise RetriesExhausted(f"still conflicting after {MAX_ATTEMPTS} attempts")
