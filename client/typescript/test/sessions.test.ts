// Sessions against a real node: the key proves itself once, commits go
// unsigned and are attested by the node; a forged proof is refused;
// `{ signed: true }` signs every transaction.

import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { Client, Session, freshId } from '../src/client.js';
import { addressOf, sessionProofHash, signHash, streamId } from '../src/txn.js';
import { startNode } from './node.js';

const ALICE = new Uint8Array(32).fill(7);
const BOB = new Uint8Array(32).fill(8);
const text = (s: string) => new TextEncoder().encode(s);

async function create(client: Client, secret: Uint8Array, name: string): Promise<Uint8Array> {
  const tx = { id: freshId(), readVersion: await client.begin(), reads: [], writes: [], acl: [{ op: 'create_stream' as const, name: text(name) }] };
  assert.equal((await client.commitAs(tx, secret)).outcome, 'committed');
  return streamId(addressOf(secret), text(name));
}

test('sessions commit as their account, signed mode signs, forgers are refused', async () => {
  const node = await startNode();
  try {
    const client = new Client(node.endpoint);
    const stream = await create(client, ALICE, 'ts-session');
    const [, version] = await client.transact(ALICE, async (tx) => tx.put(stream, text('k'), text('v')));
    assert.deepEqual(await client.get(stream, text('k'), 0n, version), text('v'));
    assert.ok(!client.signed, 'the commits went on a session');

    const session: Session = (await client.session(ALICE))!;
    assert.deepEqual(session.account, addressOf(ALICE));

    const signedClient = new Client(node.endpoint, { signed: true });
    const bobs = await create(signedClient, BOB, 'ts-signed');
    await signedClient.transact(BOB, async (tx) => tx.put(bobs, text('k'), text('v')));
    signedClient.close();

    const forger = (client as any).txn.session();
    const refused = new Promise<any>((resolve) => forger.on('error', resolve));
    forger.once('data', (first: any) => {
      const c = first.challenge;
      const proof = sessionProofHash(c.node, c.nonce, BigInt(c.expiresUnixMs));
      forger.write({ open: { account: Buffer.from(addressOf(BOB)), signature: Buffer.from(signHash(proof, ALICE)) } });
    });
    assert.equal((await refused).code, 16, 'UNAUTHENTICATED');
    client.close();
  } finally {
    await node.stop();
  }
});
