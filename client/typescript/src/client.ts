// A connection to one ordo node: reads at a version, commits, and
// `transact`, which runs a function as one serializable transaction and
// retries it on conflicts with the same policy as the Rust client.

import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { fileURLToPath } from 'node:url';
import { AclOp, Read, Transaction, Write, addressOf, encode, sessionProofHash, sign, signHash, toHex } from './txn.js';

/** Retry policy (docs/PROTOCOL.md), the Rust client's too. */
export const MAX_ATTEMPTS = 10;
export const FIRST_BACKOFF_MS = 5;
export const MAX_BACKOFF_MS = 500;
export const RETRYABLE = new Set(['conflict', 'too_old']);

/** The decision of a commit, as the node sends it (proto `CommitResponse`). */
export interface CommitResponse {
  outcome: string;
  version: string;
  message: string;
  seq: string;
  decision?: { kind: string; version: string; stream: Buffer; key?: Buffer; operation: string };
  original?: { kind: string; version: string };
}

/** The log decided against the transaction for a reason retrying cannot fix. */
export class Aborted extends Error {
  constructor(readonly response: CommitResponse) {
    super(`transaction aborted (${response.outcome}): ${response.message}`);
  }
}

/** Every attempt lost a conflict. */
export class RetriesExhausted extends Error {}

let counter = 0n;

/** A transaction id that never repeats for this sender: nanosecond time
 * mixed with the process id, then a counter. */
export function freshId(): Uint8Array {
  const id = new Uint8Array(16);
  const view = new DataView(id.buffer);
  const mixed = (process.hrtime.bigint() + BigInt(Date.now()) * 1_000_000n) ^ (BigInt(process.pid) << 40n);
  view.setBigUint64(0, BigInt.asUintN(64, mixed));
  view.setBigUint64(8, counter++);
  return id;
}

const protoDir = fileURLToPath(new URL('../../proto/', import.meta.url));

function services(): any {
  const options = { keepCase: false, longs: String, bytes: Buffer, defaults: true, enums: String, oneofs: true };
  const definition = protoLoader.loadSync(['ordo/v1/kv.proto', 'ordo/v1/status.proto'], { ...options, includeDirs: [protoDir] });
  return (grpc.loadPackageDefinition(definition) as any).ordo.v1;
}

/** A transaction being built by a `transact` function: reads at one
 * snapshot (they join the read set), buffered writes and ACL operations. */
export class TxContext {
  readonly reads: Read[] = [];
  readonly writes = new Map<string, Write>();
  readonly acl: AclOp[] = [];
  constructor(private readonly client: Client, readonly snapshot: bigint) {}

  /** This transaction's own write of `key` if it made one, else the value at the snapshot. */
  async get(stream: Uint8Array, key: Uint8Array): Promise<Uint8Array | undefined> {
    const own = this.writes.get(slot(stream, key));
    if (own) return own.value;
    this.reads.push({ type: 'key', stream, key });
    return this.client.get(stream, key, this.snapshot);
  }
  put(stream: Uint8Array, key: Uint8Array, value: Uint8Array): void {
    this.writes.set(slot(stream, key), { stream, key, value });
  }
  delete(stream: Uint8Array, key: Uint8Array): void {
    this.writes.set(slot(stream, key), { stream, key });
  }
}

function slot(stream: Uint8Array, key: Uint8Array): string {
  return Buffer.from(stream).toString('hex') + ':' + Buffer.from(key).toString('hex');
}

function call<T>(stub: any, method: string, request: object): Promise<T> {
  return new Promise((resolve, reject) =>
    stub[method](request, (error: grpc.ServiceError | null, answer: T) => (error ? reject(error) : resolve(answer))),
  );
}

/** Metadata naming the oldest version a node still reads at, on a refusal
 * of a read below the log's retention horizon (docs/PROTOCOL.md). */
export const OLDEST_VERSION_METADATA = 'ordo-oldest-version';

/** The version asked for is below the log's retention horizon: that history
 * is no longer kept. Read at `oldest` or later. */
export class Compacted extends Error {
  constructor(
    readonly oldest: bigint,
    message: string,
  ) {
    super(`compacted: ${message}`);
  }
}

/** The typed form of a refusal below the horizon, if `error` is one. */
function compacted(error: unknown): Compacted | undefined {
  const status = error as grpc.ServiceError;
  if (status?.code !== grpc.status.OUT_OF_RANGE) return undefined;
  const oldest = status.metadata?.get(OLDEST_VERSION_METADATA)[0];
  return oldest === undefined ? undefined : new Compacted(BigInt(oldest.toString()), status.details);
}

/** The node refused one commit of a session (gRPC code and why). */
export class SessionRefused extends Error {
  constructor(readonly code: number, message: string) {
    super(`commit refused (gRPC code ${code}): ${message}`);
  }
}

/** A `Txn.Session` stream: the key proves itself once, then each commit
 * goes unsigned (docs/PROTOCOL.md, "Sessions"). Several commits may be in
 * flight; the session ends with `close` or when the stream breaks. */
export class Session {
  private readonly waiting = new Map<string, { resolve: (r: CommitResponse) => void; reject: (e: Error) => void }>();
  private nextId = 0n;
  private ended?: Error;

  private constructor(readonly account: Uint8Array, private readonly stream: grpc.ClientDuplexStream<any, any>) {
    stream.on('data', (message: any) => this.answer(message));
    stream.on('error', (error: Error) => this.end(error));
    stream.on('end', () => this.end(new Error('the node ended the session')));
  }

  /** Opens a session on `txn` (a Txn stub) as `secret`'s account. */
  static open(txn: any, secret: Uint8Array): Promise<Session> {
    const stream: grpc.ClientDuplexStream<any, any> = txn.session();
    const account = addressOf(secret);
    return new Promise((resolve, reject) => {
      const onError = (error: Error) => reject(error);
      stream.once('error', onError);
      stream.once('data', (first: any) => {
        const challenge = first.challenge;
        if (!challenge) return reject(new Error('session protocol: the node sent no challenge'));
        const proof = sessionProofHash(challenge.node, challenge.nonce, BigInt(challenge.expiresUnixMs));
        stream.write({ open: { account: Buffer.from(account), signature: Buffer.from(signHash(proof, secret)) } });
        stream.once('data', (second: any) => {
          stream.off('error', onError);
          if (!second.opened) return reject(new Error('session protocol: the node did not confirm the session'));
          resolve(new Session(account, stream));
        });
      });
    });
  }

  /** Commits `tx` as the session's account and returns the decision. */
  commit(tx: Transaction): Promise<CommitResponse> {
    if (this.ended) return Promise.reject(this.ended);
    tx.sender = this.account;
    const requestId = (this.nextId++).toString();
    return new Promise((resolve, reject) => {
      this.waiting.set(requestId, { resolve, reject });
      this.stream.write({ commit: { requestId, transaction: Buffer.from(encode(tx)) } });
    });
  }

  get closed(): boolean {
    return this.ended !== undefined;
  }

  close(): void {
    this.stream.end();
    this.end(new Error('the session was closed'));
  }

  private answer(message: any): void {
    const committed = message.committed;
    if (!committed) return;
    const waiter = this.waiting.get(committed.requestId);
    if (!waiter) return;
    this.waiting.delete(committed.requestId);
    if (committed.errorCode) waiter.reject(new SessionRefused(committed.errorCode, committed.error));
    else waiter.resolve(committed.response);
  }

  private end(error: Error): void {
    if (this.ended) return;
    this.ended = error;
    for (const waiter of this.waiting.values()) waiter.reject(error);
    this.waiting.clear();
  }
}

/** A connection to one node (`host:port`). By default commits go on a
 * session per key (one signature per session); `{ signed: true }` signs
 * every transaction instead, trusting no node to vouch for the sender. */
export class Client {
  private readonly kv: any;
  private readonly txn: any;
  private readonly statusStub: any;
  private readonly sessions = new Map<string, Promise<Session>>();
  signed: boolean;

  constructor(endpoint = '127.0.0.1:7420', options: { signed?: boolean } = {}) {
    const v1 = services();
    const target = endpoint.replace(/^http:\/\//, '');
    const credentials = grpc.credentials.createInsecure();
    this.kv = new v1.Kv(target, credentials);
    this.txn = new v1.Txn(target, credentials);
    this.statusStub = new v1.Status(target, credentials);
    this.signed = options.signed ?? false;
  }

  close(): void {
    for (const session of this.sessions.values()) session.then((s) => s.close(), () => {});
    for (const stub of [this.kv, this.txn, this.statusStub]) stub.close();
  }

  /** The open session of `secret`'s account (opened on first use), or
   * undefined when the node is not a gateway (then commits are signed). */
  async session(secret: Uint8Array): Promise<Session | undefined> {
    const account = toHex(addressOf(secret));
    let opening = this.sessions.get(account);
    if (!opening) {
      opening = Session.open(this.txn, secret);
      this.sessions.set(account, opening);
    }
    try {
      const session = await opening;
      if (!session.closed) return session;
      this.sessions.delete(account);
      return this.session(secret);
    } catch (error: any) {
      this.sessions.delete(account);
      if (error?.code !== grpc.status.FAILED_PRECONDITION) throw error;
      this.signed = true;
      return undefined;
    }
  }

  /** Commits `tx` as `secret`'s account: on its session, or signed. */
  async commitAs(tx: Transaction, secret: Uint8Array): Promise<CommitResponse> {
    for (let attempt = 0; ; attempt++) {
      const session = this.signed ? undefined : await this.session(secret);
      if (!session) return this.commit(sign(tx, secret));
      try {
        return await session.commit(tx);
      } catch (error) {
        // A broken stream: resending the same transaction on a new session
        // applies it at most once (ids are idempotent).
        if (!session.closed || attempt === 1) throw error;
      }
    }
  }

  /** The newest applied version: a snapshot to read at. */
  async begin(): Promise<bigint> {
    const answer = await call<{ version: string }>(this.txn, 'begin', {});
    return BigInt(answer.version);
  }

  /** The value of `key` at `version` (0: latest), waiting for `minVersion`.
   * Throws `Compacted` for a version below the log's retention horizon. */
  async get(stream: Uint8Array, key: Uint8Array, version = 0n, minVersion = 0n): Promise<Uint8Array | undefined> {
    const request = { stream, key, version: version.toString(), minVersion: minVersion.toString() };
    try {
      const answer = await call<{ found: boolean; value: Buffer }>(this.kv, 'get', request);
      return answer.found ? new Uint8Array(answer.value) : undefined;
    } catch (error) {
      throw compacted(error) ?? error;
    }
  }

  /** Sends signed transaction bytes (see `sign`) and returns the decision. */
  commit(signed: Uint8Array): Promise<CommitResponse> {
    return call<CommitResponse>(this.txn, 'commit', { transaction: Buffer.from(signed) });
  }

  /** Runs `body` as one serializable transaction of `secret`'s account;
   * returns its result and the commit version. `body` may run several
   * times and must have no effects outside the transaction. */
  async transact<T>(secret: Uint8Array, body: (tx: TxContext) => Promise<T>): Promise<[T, bigint]> {
    let backoff = FIRST_BACKOFF_MS;
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      const context = new TxContext(this, await this.begin());
      const value = await body(context);
      const writes = [...context.writes.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([, w]) => w);
      const tx = { id: freshId(), readVersion: context.snapshot, reads: context.reads, writes, acl: context.acl };
      const decided = await this.commitAs(tx, secret);
      if (decided.outcome === 'committed') return [value, BigInt(decided.version)];
      if (!RETRYABLE.has(decided.outcome)) throw new Aborted(decided);
      if (attempt < MAX_ATTEMPTS) {
        await new Promise((resolve) => setTimeout(resolve, backoff));
        backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
      }
    }
    throw new RetriesExhausted(`still conflicting after ${MAX_ATTEMPTS} attempts`);
  }
}
