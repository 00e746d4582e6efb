#!/usr/bin/env node
// @ts-check
/**
 * Generates the SDK's types from the contract: openapi/openapi.json → openapi/sdk/src/schema.d.ts,
 * with the openapi-typescript CLI (a root devDependency, so the version is the lockfile's).
 *
 *   node openapi/scripts/sdk.mjs          write the file            (npm run sdk)
 *   node openapi/scripts/sdk.mjs --check  exit 1 when it is stale   (npm run sdk:check)
 *
 * The check regenerates into a temporary directory and compares bytes, so it never touches
 * the checked-in file.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CONTRACT = path.join(root, 'openapi/openapi.json');
const TARGET = path.join(root, 'openapi/sdk/src/schema.d.ts');
const check = process.argv.includes('--check');

const require = createRequire(path.join(root, 'package.json'));
const cli = path.join(path.dirname(require.resolve('openapi-typescript/package.json')), 'bin/cli.js');

/** Runs the CLI; false (with its output on stderr) when it fails. */
function generate(outFile) {
  const result = spawnSync(process.execPath, [cli, CONTRACT, '--output', outFile], { cwd: root, encoding: 'utf8' });
  if (result.status === 0) return true;
  process.stderr.write(`${result.stdout ?? ''}${result.stderr ?? ''}openapi-typescript failed\n`);
  return false;
}

const dir = mkdtempSync(path.join(tmpdir(), 'sc-sdk-'));
try {
  const fresh = path.join(dir, 'schema.d.ts');
  if (!generate(fresh)) {
    process.exitCode = 2;
  } else if (check) {
    let current = null;
    try {
      current = readFileSync(TARGET);
    } catch {
      // missing counts as stale
    }
    if (current === null || !current.equals(readFileSync(fresh))) {
      process.stderr.write(
        'openapi/sdk/src/schema.d.ts is stale against openapi/openapi.json: run `npm run sdk` and commit the result\n',
      );
      process.exitCode = 1; // not process.exit(): the finally below still removes the temp dir
    } else {
      process.stdout.write('openapi/sdk/src/schema.d.ts is current\n');
    }
  } else {
    copyFileSync(fresh, TARGET);
    process.stdout.write(`wrote ${path.relative(process.cwd(), TARGET)}\n`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
