// Transactions as ordo's protocol defines them (docs/PROTOCOL.md): the
// canonical encoding, the signing hash, secp256k1 signatures, addresses
// and stream ids. Pure functions; nothing here talks to a node.

import { secp256k1 } from '@noble/curves/secp256k1.js';
import { blake3 } from '@noble/hashes/blake3.js';
import { keccak_256 } from '@noble/hashes/sha3.js';

export const FORMAT_VERSION = 1;
const ascii = (text: string) => new TextEncoder().encode(text);
export const SIGNING_DOMAIN = new Uint8Array([...ascii('ordo/txn/v1'), 0]);
export const STREAM_ID_KEY = ascii('ordo/txn/stream-id/v1...........');

/** A read of one key, or of every key from `start` up to `end` (exclusive). */
export type Read =
  | { type: 'key'; stream: Uint8Array; key: Uint8Array }
  | { type: 'range'; stream: Uint8Array; start: Uint8Array; end?: Uint8Array };

/** A put (`value` set, possibly empty) or a delete (`value` undefined). */
export interface Write {
  stream: Uint8Array;
  key: Uint8Array;
  value?: Uint8Array;
}

/** Access-control operations (docs/ACL.md): name -> tag and fields in wire order. */
export const ACL_OPS = {
  create_stream: [0x01, ['name']],
  grant_admin: [0x10, ['stream', 'account']],
  renounce_admin: [0x11, ['stream']],
  set_key_special: [0x20, ['stream', 'key']],
  set_key_normal: [0x21, ['stream', 'key']],
  grant_writer: [0x30, ['stream', 'account']],
  revoke_writer: [0x31, ['stream', 'account']],
  renounce_writer: [0x32, ['stream']],
  grant_special_writer: [0x40, ['stream', 'key', 'account']],
  revoke_special_writer: [0x41, ['stream', 'key', 'account']],
  renounce_special_writer: [0x42, ['stream', 'key']],
  grant_gateway: [0x50, ['account']],
  revoke_gateway: [0x51, ['account']],
} as const;

export type AclOpName = keyof typeof ACL_OPS;

/** One access-control operation, e.g. `{ op: 'grant_writer', stream, account }`. */
export interface AclOp {
  op: AclOpName;
  name?: Uint8Array;
  stream?: Uint8Array;
  key?: Uint8Array;
  account?: Uint8Array;
}

/** A transaction before signing; `sign` sets its sender. */
export interface Transaction {
  id: Uint8Array;
  readVersion: bigint;
  reads: Read[];
  writes: Write[];
  acl: AclOp[];
  sender?: Uint8Array;
}

class Encoder {
  private parts: Uint8Array[] = [];
  private length = 0;
  private push(part: Uint8Array): this {
    this.parts.push(part);
    this.length += part.length;
    return this;
  }
  u8(v: number): this {
    return this.push(Uint8Array.of(v));
  }
  u32(v: number): this {
    const out = new Uint8Array(4);
    new DataView(out.buffer).setUint32(0, v, true);
    return this.push(out);
  }
  u64(v: bigint): this {
    const out = new Uint8Array(8);
    new DataView(out.buffer).setBigUint64(0, v, true);
    return this.push(out);
  }
  fixed(v: Uint8Array | undefined, size: number, what: string): this {
    if (!v || v.length !== size) throw new Error(`${what} must be ${size} bytes`);
    return this.push(v);
  }
  bytes(v: Uint8Array): this {
    return this.u32(v.length).push(v);
  }
  finish(): Uint8Array {
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const part of this.parts) {
      out.set(part, at);
      at += part.length;
    }
    return out;
  }
}

function compare(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

function encodeRead(w: Encoder, read: Read): void {
  if (read.type === 'key') {
    w.u8(0).fixed(read.stream, 32, 'stream').bytes(read.key);
    return;
  }
  w.u8(1).fixed(read.stream, 32, 'stream').bytes(read.start);
  if (read.end === undefined) {
    w.u8(0);
    return;
  }
  if (compare(read.end, read.start) < 0) throw new Error('a range read must not end before it starts');
  w.u8(1).bytes(read.end);
}

function encodeWrite(w: Encoder, write: Write): void {
  w.u8(write.value === undefined ? 0 : 1).fixed(write.stream, 32, 'stream').bytes(write.key);
  if (write.value !== undefined) w.bytes(write.value);
}

function encodeAcl(w: Encoder, op: AclOp): void {
  const spec = ACL_OPS[op.op];
  if (!spec) throw new Error(`unknown ACL operation ${op.op}`);
  const [tag, fields] = spec;
  w.u8(tag);
  for (const field of fields) {
    const value = op[field];
    if (field === 'stream') w.fixed(value, 32, field);
    else if (field === 'account') w.fixed(value, 20, field);
    else if (value === undefined) throw new Error(`${op.op} needs ${field}`);
    else w.bytes(value);
  }
}

/** The canonical encoding of a transaction. */
export function encode(tx: Transaction): Uint8Array {
  const w = new Encoder().u8(FORMAT_VERSION).fixed(tx.id, 16, 'id');
  w.fixed(tx.sender ?? new Uint8Array(20), 20, 'sender').u64(tx.readVersion);
  w.u32(tx.reads.length);
  tx.reads.forEach((r) => encodeRead(w, r));
  w.u32(tx.writes.length);
  tx.writes.forEach((x) => encodeWrite(w, x));
  w.u32(tx.acl.length);
  tx.acl.forEach((op) => encodeAcl(w, op));
  return w.finish();
}

/** Keccak-256 (as Ethereum uses it) over the domain and the encoding. */
export function signingHash(tx: Transaction): Uint8Array {
  const encoded = encode(tx);
  const input = new Uint8Array(SIGNING_DOMAIN.length + encoded.length);
  input.set(SIGNING_DOMAIN);
  input.set(encoded, SIGNING_DOMAIN.length);
  return keccak_256(input);
}

/** The 20-byte address of a 32-byte secret key. */
export function addressOf(secret: Uint8Array): Uint8Array {
  return keccak_256(secp256k1.getPublicKey(secret, false).slice(1)).slice(12);
}

/** The id of the stream `creator` makes under `name`. */
export function streamId(creator: Uint8Array, name: Uint8Array): Uint8Array {
  const input = new Uint8Array(creator.length + name.length);
  input.set(creator);
  input.set(name, creator.length);
  return blake3(input, { key: STREAM_ID_KEY });
}

/** Sets the sender to the key's address, signs, and returns the signed
 * transaction's bytes (what Txn.Commit takes). */
export function sign(tx: Transaction, secret: Uint8Array): Uint8Array {
  tx.sender = addressOf(secret);
  const signature = signHash(signingHash(tx), secret);
  return new Encoder().bytes(encode(tx)).fixed(signature, 65, 'signature').finish();
}

/** r || s || v (v 27 or 28) over a 32-byte hash: ordo's signature form. */
export function signHash(hash: Uint8Array, secret: Uint8Array): Uint8Array {
  // 'recovered': the recovery id, then r || s (low s, RFC 6979 nonce).
  const recovered = secp256k1.sign(hash, secret, { prehash: false, format: 'recovered' });
  const signature = new Uint8Array(65);
  signature.set(recovered.slice(1, 65));
  signature[64] = 27 + recovered[0];
  return signature;
}

const SESSION_DOMAIN = new TextEncoder().encode('ordo/session/v1\0');

/** What a client signs to open a session (docs/PROTOCOL.md, "Sessions"). */
export function sessionProofHash(node: Uint8Array, nonce: Uint8Array, expiresUnixMs: bigint): Uint8Array {
  const w = new Encoder().fixed(node, 20, 'node').fixed(nonce, 32, 'nonce').u64(expiresUnixMs).finish();
  const input = new Uint8Array(SESSION_DOMAIN.length + w.length);
  input.set(SESSION_DOMAIN);
  input.set(w, SESSION_DOMAIN.length);
  return keccak_256(input);
}

/** Lowercase hex of bytes. */
export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Bytes of lowercase or uppercase hex. */
export function fromHex(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}
