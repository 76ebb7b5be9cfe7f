// A bank against a real node (the binary named by ORDO_BIN, on free
// loopback ports, stopped by PID): concurrent transfers retried on
// conflicts by `transact`. Money is conserved at every version the log
// produced, read back afterwards.

import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { Client, freshId } from '../src/client.js';
import { startNode } from './node.js';
import { addressOf, sign, streamId } from '../src/txn.js';

const ACCOUNTS = 8;
const START_BALANCE = 100n;
const CLIENTS = 4;
const TRANSFERS_PER_CLIENT = 15;
const OWNER = new Uint8Array(32).fill(1);
const text = (s: string) => new TextEncoder().encode(s);
const account = (i: number) => text(`account/${i}`);
const amount = (n: bigint) => {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, n);
  return out;
};
const balance = (v?: Uint8Array) => (v ? new DataView(v.buffer, v.byteOffset).getBigUint64(0) : 0n);

async function openBank(client: Client, secrets: Uint8Array[]): Promise<[Uint8Array, bigint]> {
  const bank = streamId(addressOf(OWNER), text('bank'));
  const create = { id: freshId(), readVersion: await client.begin(), reads: [], writes: [], acl: [{ op: 'create_stream' as const, name: text('bank') }] };
  assert.equal((await client.commit(sign(create, OWNER))).outcome, 'committed');
  // Operations in one transaction are checked against the state before it,
  // so the grants need the stream to exist already.
  const grants = secrets.map((s) => ({ op: 'grant_writer' as const, stream: bank, account: addressOf(s) }));
  const grant = { id: freshId(), readVersion: await client.begin(), reads: [], writes: [], acl: grants };
  assert.equal((await client.commit(sign(grant, OWNER))).outcome, 'committed');
  const [, funded] = await client.transact(OWNER, async (tx) => {
    for (let i = 0; i < ACCOUNTS; i++) tx.put(bank, account(i), amount(START_BALANCE));
  });
  return [bank, funded];
}

async function transfers(endpoint: string, bank: Uint8Array, secret: Uint8Array, seed: number): Promise<number> {
  const client = new Client(endpoint);
  let state = seed + 1;
  const next = (n: number) => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state % n;
  };
  let moved = 0;
  for (let t = 0; t < TRANSFERS_PER_CLIENT; t++) {
    const source = next(ACCOUNTS);
    const target = (source + 1 + next(ACCOUNTS - 1)) % ACCOUNTS;
    const value = BigInt(1 + next(30));
    const [done] = await client.transact(secret, async (tx) => {
      const have = balance(await tx.get(bank, account(source)));
      if (have < value) return false;
      const other = balance(await tx.get(bank, account(target)));
      tx.put(bank, account(source), amount(have - value));
      tx.put(bank, account(target), amount(other + value));
      return true;
    });
    moved += done ? 1 : 0;
  }
  client.close();
  return moved;
}

test('concurrent transfers conserve money at every version', async () => {
  const node = await startNode();
  try {
    const client = new Client(node.endpoint);
    const secrets = Array.from({ length: CLIENTS }, (_, c) => new Uint8Array(32).fill(2 + c));
    const [bank, funded] = await openBank(client, secrets);
    const moved = await Promise.all(secrets.map((s, n) => transfers(node.endpoint, bank, s, n)));
    assert.ok(moved.reduce((a, b) => a + b, 0) > 0, 'some transfers moved money');
    const last = await client.begin();
    for (let version = funded; version <= last; version++) {
      let total = 0n;
      for (let i = 0; i < ACCOUNTS; i++) total += balance(await client.get(bank, account(i), version));
      assert.equal(total, BigInt(ACCOUNTS) * START_BALANCE, `money changed at version ${version}`);
    }
    client.close();
  } finally {
    await node.stop();
  }
});
