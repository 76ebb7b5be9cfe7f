"""ordo's Python client.

- `ordo.txn`: the transaction encoding, signing, addresses and stream ids
  of docs/PROTOCOL.md (no network).
- `ordo.client`: `Client` (reads, commits, `transact` with retries).
- `ordo.da`: `Blobs` (disperse a blob, follow it, read it back, its
  certificate; docs/DA.md).

The gRPC stubs (`ordo.v1`) are generated from proto/ordo/v1/*.proto by
`scripts/python-client.sh`.
"""

from ordo.txn import AclOp, ReadKey, ReadRange, Transaction, Write, address_of, sign, stream_id

__all__ = ["AclOp", "ReadKey", "ReadRange", "Transaction", "Write", "address_of", "sign", "stream_id"]
