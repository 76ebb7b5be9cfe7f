"""A connection to one ordo node: reads at a version, commits, and
`transact`, which runs a function as one serializable transaction and
retries it on conflicts with the same policy as the Rust client."""

from __future__ import annotations

import itertools
import os
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


class Client:
    """A connection to one node (`host:port`)."""

    def __init__(self, endpoint: str = "127.0.0.1:7420"):
        target = endpoint.removeprefix("http://")
        self.channel = grpc.insecure_channel(target)
        self.kv = kv_pb2_grpc.KvStub(self.channel)
        self.txn = kv_pb2_grpc.TxnStub(self.channel)
        self.status_stub = status_pb2_grpc.StatusStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def status(self) -> status_pb2.GetStatusResponse:
        return self.status_stub.GetStatus(status_pb2.GetStatusRequest())

    def begin(self) -> int:
        """The newest applied version: a snapshot to read at."""
        return self.txn.Begin(kv_pb2.BeginRequest()).version

    def get(self, stream: bytes, key: bytes, version: int = 0, min_version: int = 0) -> Optional[bytes]:
        """The value of `key` at `version` (0: latest), waiting for `min_version`."""
        request = kv_pb2.GetRequest(stream=stream, key=key, version=version, min_version=min_version)
        answer = self.kv.Get(request)
        return answer.value if answer.found else None

    def commit(self, signed: bytes) -> kv_pb2.CommitResponse:
        """Sends signed transaction bytes (see `ordo.txn.sign`) and returns the decision."""
        return self.txn.Commit(kv_pb2.CommitRequest(transaction=signed))

    def transact(self, secret: bytes, body: Callable[[TxContext], T]) -> Tuple[T, int]:
        """Runs `body` as one serializable transaction signed by `secret`;
        returns its result and the commit version. `body` may run several
        times (after a conflict or a too-old snapshot) and must have no
        effects outside the transaction."""
        backoff = FIRST_BACKOFF_SECONDS
        for attempt in range(1, MAX_ATTEMPTS + 1):
            context = TxContext(self, self.begin())
            value = body(context)
            decided = self.commit(t.sign(context.transaction(), secret))
            if decided.outcome == "committed":
                return value, decided.version
            if decided.outcome not in RETRYABLE:
                raise Aborted(decided)
            if attempt < MAX_ATTEMPTS:
                time.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
        raise RetriesExhausted(f"still conflicting after {MAX_ATTEMPTS} attempts")
