// Compiles contracts/OrdoLog.sol with the pinned solc from npm and prints
// the artifact (ABI and creation bytecode) as JSON on stdout. Run by
// scripts/evm-contract.sh; the artifact in artifacts/ must equal its output.
'use strict';
const fs = require('fs');
const path = require('path');
const solc = require('solc');

const source = fs.readFileSync(path.join(__dirname, 'contracts', 'OrdoLog.sol'), 'utf8');
const input = {
  language: 'Solidity',
  sources: { 'OrdoLog.sol': { content: source } },
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: 'cancun',
    // No metadata hash: the bytecode is then a function of the source and
    // these settings alone, so the check against the artifact is exact.
    metadata: { bytecodeHash: 'none', appendCBOR: false },
    outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } },
  },
};
const output = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (output.errors || []).filter((e) => e.severity === 'error');
if (errors.length > 0) {
  for (const e of errors) console.error(e.formattedMessage);
  process.exit(1);
}
const contract = output.contracts['OrdoLog.sol'].OrdoLog;
const artifact = {
  contractName: 'OrdoLog',
  compiler: `solc ${solc.version()}`,
  abi: contract.abi,
  bytecode: `0x${contract.evm.bytecode.object}`,
};
process.stdout.write(`${JSON.stringify(artifact, null, 2)}\n`);
