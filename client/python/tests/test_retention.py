"""Reads below the log's retention horizon: the node refuses them, and the
client raises `Compacted` naming the oldest version still kept."""

import os
import subprocess

import pytest

from ordo import AclOp, Transaction, address_of, stream_id
from ordo.client import Client, Compacted, fresh_id

CAROL = bytes([9]) * 32


def _ordo(binary, *args):
    out = subprocess.run([binary, *args], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_a_read_below_the_horizon_raises_compacted_with_the_oldest_version(own_node):
    binary, endpoint, data = own_node
    client = Client(endpoint)
    tx = Transaction(fresh_id(), client.begin(), acl=[AclOp("create_stream", name=b"py-old")])
    assert client.commit_as(tx, CAROL).outcome == "committed"
    stream = stream_id(address_of(CAROL), b"py-old")
    versions = [client.transact(CAROL, lambda tx, n=n: tx.put(stream, b"k", bytes([n])))[1]
                for n in range(5)]
    admin = os.path.join(data, "node.key")
    _ordo(binary, "retention", "set", "--endpoint", endpoint, "--key", admin,
          "--keep-versions", "0", "--keep-secs", "0")
    _ordo(binary, "compact", "--endpoint", endpoint, "--key", admin, "--to", str(versions[3]))
    with pytest.raises(Compacted) as refused:
        client.get(stream, b"k", version=versions[2])
    assert refused.value.oldest == versions[3]
    assert client.get(stream, b"k", version=versions[3]) == bytes([3])
    client.close()
