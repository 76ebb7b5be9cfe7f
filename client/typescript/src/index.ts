// ordo's TypeScript client: the transaction encoding and signing of
// docs/PROTOCOL.md (`txn`), `Client` (reads, commits, `transact`), and
// `Blobs` (disperse, follow, retrieve and certify blobs; docs/DA.md).
export * from './txn.js';
export * from './client.js';
export * from './da.js';
