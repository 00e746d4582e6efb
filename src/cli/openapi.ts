/**
 * Writes (--write) or checks (--check) openapi/openapi.json against the routes. The app is
 * built on an in-memory database with throwaway secrets: only the route schemas matter.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { buildApp } from '../app.js';
import { loadConfig } from '../config.js';
import { createLogger } from '../lib/logger.js';

const OUT = path.resolve('openapi/openapi.json');
const mode = process.argv.includes('--check') ? 'check' : 'write';

const config = loadConfig(
  {
    NODE_ENV: 'test',
    JWT_SECRET: randomBytes(32).toString('hex'),
    ENCRYPTION_KEYS: `v1:${randomBytes(32).toString('base64')}`,
    AUDIT_CHECKPOINT_KEY: randomBytes(32).toString('base64'),
  },
  { overrides: { pgliteDir: null, databaseUrl: undefined } },
);
const app = await buildApp(config, { logger: createLogger('silent') });
const text = `${JSON.stringify(app.swagger(), null, 2)}\n`;
await app.close();

if (mode === 'write') {
  mkdirSync(path.dirname(OUT), { recursive: true });
  writeFileSync(OUT, text);
  process.stdout.write(`wrote ${path.relative(process.cwd(), OUT)}\n`);
} else {
  let current = '';
  try {
    current = readFileSync(OUT, 'utf8');
  } catch {
    // missing counts as stale
  }
  if (current !== text) {
    process.stderr.write('openapi/openapi.json is stale: run `npm run openapi` and commit the result\n');
    process.exit(1);
  }
  process.stdout.write('openapi/openapi.json is current\n');
}
