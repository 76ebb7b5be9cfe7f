// ordo's TypeScript client: the transaction encoding and signing of
// docs/PROTOCOL.md (`txn`), and `Client` (reads, commits, `transact`).
export * from './txn.js';
export * from './client.js';
