// Blobs through a real node from TypeScript: dispersed, recorded, read back
// byte for byte, certified; a start signed by another key is refused.

import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { blake3 } from '@noble/hashes/blake3.js';
import { Blobs, dispersalHash } from '../src/da.js';
import { addressOf, signHash } from '../src/txn.js';
import { startNode } from './node.js';

const DAVE = new Uint8Array(32).fill(11);
const EVE = new Uint8Array(32).fill(12);

test('a blob round-trips and has a certificate', async () => {
  const node = await startNode();
  try {
    const blobs = new Blobs(node.endpoint);
    const blob = new Uint8Array(300_000).map((_, i) => (i * 7) % 251);
    const accepted = await blobs.disperse(DAVE, blob);
    const done = await blobs.waitForBlob(accepted.blobId, addressOf(DAVE));
    assert.equal(done.state, 'BLOB_STATE_FINALIZED', done.reason);
    assert.equal(done.size, '300000');
    assert.deepEqual(await blobs.retrieve(accepted.blobId), blob);
    const certificate = await blobs.certificate(accepted.blobId);
    assert.equal(new TextDecoder().decode(certificate.subarray(0, 4)), 'ODT1');
    blobs.close();
  } finally {
    await node.stop();
  }
});

test('a start signed by another key is refused', async () => {
  const node = await startNode();
  try {
    const blobs = new Blobs(node.endpoint);
    const blob = new TextEncoder().encode('forged');
    const status: any = await new Promise((resolve, reject) =>
      (blobs as any).statusStub.GetStatus({}, (e: any, s: any) => (e ? reject(e) : resolve(s))));
    const deadline = BigInt(Date.now() + 60_000);
    const contentHash = blake3(blob);
    // EVE signs a start claiming DAVE as the owner: the node recovers EVE.
    const digest = dispersalHash(status.nodeAddress, addressOf(DAVE), BigInt(blob.length), contentHash, 0n, deadline);
    const start = {
      owner: Buffer.from(addressOf(DAVE)), size: String(blob.length), contentHash: Buffer.from(contentHash),
      ttlSecs: '0', deadlineUnixMs: deadline.toString(), signature: Buffer.from(signHash(digest, EVE)),
    };
    await assert.rejects(blobs.send(start, blob), (error: any) => error.code === grpc.status.UNAUTHENTICATED);
    blobs.close();
  } finally {
    await node.stop();
  }
});
