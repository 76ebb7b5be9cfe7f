// Reads below the log's retention horizon: the node refuses them, and the
// client throws `Compacted` naming the oldest version still kept.

import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { Client, Compacted, freshId } from '../src/client.js';
import { addressOf, streamId } from '../src/txn.js';
import { startNode } from './node.js';

const CAROL = new Uint8Array(32).fill(9);
const text = (s: string) => new TextEncoder().encode(s);

test('a read below the horizon throws Compacted with the oldest version', async () => {
  const node = await startNode();
  try {
    const client = new Client(node.endpoint);
    const create = { id: freshId(), readVersion: await client.begin(), reads: [], writes: [], acl: [{ op: 'create_stream' as const, name: text('ts-old') }] };
    assert.equal((await client.commitAs(create, CAROL)).outcome, 'committed');
    const stream = streamId(addressOf(CAROL), text('ts-old'));
    const versions: bigint[] = [];
    for (let n = 0; n < 5; n++) {
      const [, version] = await client.transact(CAROL, async (tx) => tx.put(stream, text('k'), new Uint8Array([n])));
      versions.push(version);
    }
    const admin = join(node.data, 'node.key');
    const ordo = (...args: string[]) => execFileSync(node.binary, args, { timeout: 60_000 });
    ordo('retention', 'set', '--endpoint', node.endpoint, '--key', admin, '--keep-versions', '0', '--keep-secs', '0');
    ordo('compact', '--endpoint', node.endpoint, '--key', admin, '--to', versions[3].toString());
    await assert.rejects(client.get(stream, text('k'), versions[2]), (error: unknown) => {
      assert.ok(error instanceof Compacted, String(error));
      assert.equal(error.oldest, versions[3]);
      return true;
    });
    assert.deepEqual(await client.get(stream, text('k'), versions[3]), new Uint8Array([3]));
    client.close();
  } finally {
    await node.stop();
  }
});
