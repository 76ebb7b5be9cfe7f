"""A bank against a real node: concurrent transfers between accounts,
retried on conflicts by `transact`. Money is conserved at every version
the log produced, read back afterwards."""

import random
import struct
from concurrent.futures import ThreadPoolExecutor

from ordo import AclOp, Transaction, sign, stream_id, address_of
from ordo.client import Client, fresh_id

ACCOUNTS = 8
START_BALANCE = 100
CLIENTS = 4
TRANSFERS_PER_CLIENT = 15
OWNER = bytes([1]) * 32


def _balance(value):
    return struct.unpack(">Q", value)[0] if value is not None else 0


def _account(i):
    return f"account/{i}".encode()


def _open_bank(client, clients):
    bank = stream_id(address_of(OWNER), b"bank")
    create = Transaction(fresh_id(), client.begin(), acl=[AclOp("create_stream", name=b"bank")])
    assert client.commit(sign(create, OWNER)).outcome == "committed"
    # Operations in one transaction are checked against the state before
    # it, so the grants need the stream to exist already.
    grants = [AclOp("grant_writer", stream=bank, account=address_of(k)) for k in clients]
    grant = Transaction(fresh_id(), client.begin(), acl=grants)
    assert client.commit(sign(grant, OWNER)).outcome == "committed"

    def fund(tx):
        for i in range(ACCOUNTS):
            tx.put(bank, _account(i), struct.pack(">Q", START_BALANCE))

    _, version = client.transact(OWNER, fund)
    return bank, version


def _transfers(endpoint, bank, secret, seed):
    """One client's transfers; returns how many moved money."""
    client = Client(endpoint)
    chooser = random.Random(seed)
    moved = 0
    for _ in range(TRANSFERS_PER_CLIENT):
        source, target = chooser.sample(range(ACCOUNTS), 2)
        amount = chooser.randint(1, 30)

        def move(tx):
            have = _balance(tx.get(bank, _account(source)))
            if have < amount:
                return False
            other = _balance(tx.get(bank, _account(target)))
            tx.put(bank, _account(source), struct.pack(">Q", have - amount))
            tx.put(bank, _account(target), struct.pack(">Q", other + amount))
            return True

        done, version = client.transact(secret, move)
        assert version > 0
        moved += done
    client.close()
    return moved


def test_concurrent_transfers_conserve_money_at_every_version(node):
    client = Client(node)
    secrets = [bytes([2 + c]) * 32 for c in range(CLIENTS)]
    bank, funded = _open_bank(client, secrets)
    with ThreadPoolExecutor(CLIENTS) as pool:
        runs = [pool.submit(_transfers, node, bank, s, n) for n, s in enumerate(secrets)]
        moved = sum(run.result(timeout=120) for run in runs)
    assert moved > 0, "some transfers moved money"
    last = client.begin()
    assert last > funded, "some transfers committed"
    for version in range(funded, last + 1):
        total = sum(_balance(client.get(bank, _account(i), version=version)) for i in range(ACCOUNTS))
        assert total == ACCOUNTS * START_BALANCE, f"money changed at version {version}"
    client.close()
