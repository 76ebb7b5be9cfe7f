// A real `ordo dev` for the tests that need one: the binary named by
// ORDO_BIN, on free loopback ports, with a temporary data directory;
// stopped by PID. `data` holds the log admin's key, `node.key`.

import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export async function startNode(): Promise<{ endpoint: string; data: string; binary: string; stop: () => Promise<void> }> {
  const binary = process.env.ORDO_BIN;
  assert.ok(binary, 'set ORDO_BIN to the ordo binary (scripts/typescript-client.sh does)');
  const data = mkdtempSync(join(tmpdir(), 'ordo-ts-'));
  const args = ['dev', '--listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0', '--no-cli-key', '--data-dir', data];
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let endpoint: string | undefined;
  for await (const line of createInterface({ input: child.stdout! })) {
    if (line.startsWith('ordo listening on ')) {
      endpoint = line.split(' ').pop();
      break;
    }
  }
  child.stdout!.resume(); // keep draining what the node prints
  assert.ok(endpoint, 'ordo dev exited before listening');
  const stop = async () => {
    child.kill('SIGTERM');
    const deadline = setTimeout(() => child.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(deadline);
    rmSync(data, { recursive: true, force: true });
  };
  return { endpoint: endpoint!, data, binary, stop };
}

