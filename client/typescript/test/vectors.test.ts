// The published test vectors (proto/vectors/transactions.json): this
// client must derive every address, encoding, hash, signature and stream
// id byte for byte.

import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { AclOp, Read, Transaction, addressOf, encode, fromHex, sessionProofHash, sign, signHash, signingHash, streamId, toHex } from '../src/txn.js';

const path = fileURLToPath(new URL('../../../../proto/vectors/transactions.json', import.meta.url));
const vectors = JSON.parse(readFileSync(path, 'utf8'));

const bytes = (hex: string | null | undefined) => (hex === null || hex === undefined ? undefined : fromHex(hex));

function read(spec: any): Read {
  if (spec.type === 'key') return { type: 'key', stream: fromHex(spec.stream), key: fromHex(spec.key) };
  return { type: 'range', stream: fromHex(spec.stream), start: fromHex(spec.start), end: bytes(spec.end) };
}

function acl(spec: any): AclOp {
  return { op: spec.op, name: bytes(spec.name), stream: bytes(spec.stream), key: bytes(spec.key), account: bytes(spec.account) };
}

function transaction(spec: any): Transaction {
  return {
    id: fromHex(spec.id),
    readVersion: BigInt(spec.read_version),
    reads: spec.reads.map(read),
    writes: spec.writes.map((w: any) => ({ stream: fromHex(w.stream), key: fromHex(w.key), value: bytes(w.value) })),
    acl: spec.acl.map(acl),
  };
}

test('every transaction vector is reproduced', () => {
  assert.equal(vectors.format, 1);
  assert.ok(vectors.transactions.length > 0, 'the file holds vectors');
  for (const vector of vectors.transactions) {
    const secret = fromHex(vector.secret_key);
    assert.equal(toHex(addressOf(secret)), vector.sender, vector.name);
    const tx = transaction(vector.transaction);
    const signed = sign(tx, secret);
    assert.equal(toHex(encode(tx)), vector.encoded, vector.name);
    assert.equal(toHex(signingHash(tx)), vector.signing_hash, vector.name);
    assert.equal(toHex(signed.slice(-65)), vector.signature, vector.name);
    assert.equal(toHex(signed), vector.signed, vector.name);
  }
});

test('every stream id vector is reproduced', () => {
  for (const vector of vectors.stream_ids) {
    assert.equal(toHex(streamId(fromHex(vector.creator), fromHex(vector.name))), vector.stream_id);
  }
});

test('every session proof vector is reproduced', () => {
  assert.ok(vectors.session_proofs.length > 0, 'the file holds session proofs');
  for (const v of vectors.session_proofs) {
    const hash = sessionProofHash(fromHex(v.node), fromHex(v.nonce), BigInt(v.expires_unix_ms));
    assert.equal(toHex(hash), v.hash);
    assert.equal(toHex(signHash(hash, fromHex(v.secret_key))), v.signature);
  }
});
