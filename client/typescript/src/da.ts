// Blobs (docs/DA.md): disperse one under an owner's key, follow it to its
// record, read it back, fetch its certificate. The same calls as the Rust
// client's `ordo_client::da`.

import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { blake3 } from '@noble/hashes/blake3.js';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { fileURLToPath } from 'node:url';
import { addressOf, signHash } from './txn.js';

/** Bytes per dispersal message (the node takes at most 1 MiB). */
export const CHUNK_BYTES = 1 << 20;
/** How long a signed start stays good (the node refuses deadlines more
 * than five minutes ahead). */
export const START_VALIDITY_MS = 120_000;
/** How often `waitForBlob` asks. */
export const POLL_MS = 100;

const DISPERSE_DOMAIN = new TextEncoder().encode('ordo/da-disperse/v1\0');

/** A blob's status, as the node sends it (proto `BlobStatus`). */
export interface BlobStatus {
  state: string;
  reason: string;
  blobId: Buffer;
  owner: Buffer;
  size: string;
  parts: number;
  partsDone: number;
  partSeqs: string[];
  recordedIn: string;
  expiresAt: string;
}

function u64(value: bigint): Uint8Array {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setBigUint64(0, value, true);
  return bytes;
}

/** What a blob's owner signs to disperse it (docs/PROTOCOL.md, "Blobs"). */
export function dispersalHash(
  node: Uint8Array, owner: Uint8Array, size: bigint, contentHash: Uint8Array, ttlSecs: bigint, deadlineUnixMs: bigint,
): Uint8Array {
  if (node.length !== 20 || owner.length !== 20 || contentHash.length !== 32) {
    throw new RangeError('node and owner are 20 bytes, the content hash 32');
  }
  const parts = [DISPERSE_DOMAIN, node, owner, u64(size), contentHash, u64(ttlSecs), u64(deadlineUnixMs)];
  const input = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    input.set(part, offset);
    offset += part.length;
  }
  return keccak_256(input);
}

const protoDir = fileURLToPath(new URL('../../proto/', import.meta.url));

function services(): any {
  const options = { keepCase: false, longs: String, bytes: Buffer, defaults: true, enums: String, oneofs: true };
  const definition = protoLoader.loadSync(['ordo/v1/da.proto', 'ordo/v1/status.proto'], { ...options, includeDirs: [protoDir] });
  return (grpc.loadPackageDefinition(definition) as any).ordo.v1;
}

function call<T>(run: (done: (error: grpc.ServiceError | null, answer: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => run((error, answer) => (error ? reject(error) : resolve(answer))));
}

/** The blob calls of one node (`host:port`). */
export class Blobs {
  readonly da: any;
  private readonly statusStub: any;

  constructor(endpoint = '127.0.0.1:7420') {
    const v1 = services();
    const target = endpoint.replace(/^http:\/\//, '');
    const credentials = grpc.credentials.createInsecure();
    this.da = new v1.Da(target, credentials);
    this.statusStub = new v1.Status(target, credentials);
  }

  close(): void {
    this.da.close();
    this.statusStub.close();
  }

  /** Sends a signed `start` and then `blob` as one dispersal. */
  send(start: object, blob: Uint8Array): Promise<{ status: BlobStatus }> {
    return call((done) => {
      const stream = this.da.Disperse(done);
      stream.write({ start });
      for (let offset = 0; offset < blob.length; offset += CHUNK_BYTES) {
        stream.write({ chunk: Buffer.from(blob.subarray(offset, offset + CHUNK_BYTES)) });
      }
      stream.end();
    });
  }

  /** Disperses `blob` owned by `secret`'s account; resolves once the node
   * holds it and knows its id. Follow it with `waitForBlob`. */
  async disperse(secret: Uint8Array, blob: Uint8Array, ttlSecs = 0n): Promise<BlobStatus> {
    const status: any = await call((done) => this.statusStub.GetStatus({}, done));
    const owner = addressOf(secret);
    const contentHash = blake3(blob);
    const deadline = BigInt(Date.now() + START_VALIDITY_MS);
    const digest = dispersalHash(status.nodeAddress, owner, BigInt(blob.length), contentHash, ttlSecs, deadline);
    const start = {
      owner: Buffer.from(owner),
      size: blob.length.toString(),
      contentHash: Buffer.from(contentHash),
      ttlSecs: ttlSecs.toString(),
      deadlineUnixMs: deadline.toString(),
      signature: Buffer.from(signHash(digest, secret)),
    };
    return (await this.send(start, blob)).status;
  }

  /** Where a blob's dispersal stands (`owner`'s, or anyone's). */
  blobStatus(blobId: Uint8Array, owner?: Uint8Array): Promise<BlobStatus> {
    const reference = { blobId: Buffer.from(blobId), owner: Buffer.from(owner ?? []) };
    return call((done) => this.da.Status(reference, done));
  }

  /** Asks until the dispersal is finalized or failed, or `timeoutMs` passes. */
  async waitForBlob(blobId: Uint8Array, owner?: Uint8Array, timeoutMs = 600_000): Promise<BlobStatus> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const status = await this.blobStatus(blobId, owner);
      const done = status.state === 'BLOB_STATE_FINALIZED' || status.state === 'BLOB_STATE_FAILED';
      if (done || Date.now() >= deadline) return status;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  /** The blob's bytes, checked by the node against its commitment. */
  retrieve(blobId: Uint8Array, owner?: Uint8Array): Promise<Uint8Array> {
    const reference = { blobId: Buffer.from(blobId), owner: Buffer.from(owner ?? []) };
    return new Promise((resolve, reject) => {
      const runs: Buffer[] = [];
      const stream = this.da.Retrieve(reference);
      stream.on('data', (message: { chunk: Buffer }) => runs.push(message.chunk));
      stream.on('error', reject);
      stream.on('end', () => resolve(new Uint8Array(Buffer.concat(runs))));
    });
  }

  /** The blob's certificate (`ODT1` bytes); verify it with `ordo da verify`. */
  async certificate(blobId: Uint8Array, owner?: Uint8Array): Promise<Uint8Array> {
    const reference = { blobId: Buffer.from(blobId), owner: Buffer.from(owner ?? []) };
    const answer: any = await call((done) => this.da.Certificate(reference, done));
    return new Uint8Array(answer.certificate);
  }
}
