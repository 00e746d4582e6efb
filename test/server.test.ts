/**
 * The real entry points, as a user runs them: `npm start` (src/server.ts) on the embedded
 * database in a fresh DATA_DIR, `npm run token`, graceful SIGTERM, and refusal to start in
 * production without secrets.
 */
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..');
const TSX = ['--import', 'tsx'];

function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of ['DATABASE_URL', 'REDIS_URL', 'JWT_SECRET', 'JWT_PUBLIC_KEY', 'ENCRYPTION_KEYS', 'AUDIT_CHECKPOINT_KEY', 'NODE_ENV', 'PORT', 'DATA_DIR']) delete env[name];
  return { ...env, ...extra };
}

t.test('npm start serves on a fresh embedded database, and SIGTERM stops it cleanly', async (t) => {
  const dataDir = path.join(mkdtempSync(path.join(tmpdir(), 'sc-start-')), 'data');
  const child = spawn(process.execPath, [...TSX, 'src/server.ts'], { cwd: ROOT, env: cleanEnv({ DATA_DIR: dataDir, PORT: '0' }) });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });

  const deadline = Date.now() + 60_000;
  let base: string | undefined;
  // Until the start-up line that follows listen() is out too (it names the docs and the token
  // command); on a busy machine it can arrive a moment after "Server listening".
  while (!(base && /SecureCare Messaging on/.test(output)) && Date.now() < deadline && child.exitCode === null) {
    base = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(output)?.[1];
    await new Promise((r) => setTimeout(r, 100));
  }
  t.ok(base, `the server listens (output: ${output.slice(-500)})`);
  if (!base) return;

  t.ok(existsSync(path.join(dataDir, 'pglite')), 'the embedded database lives in DATA_DIR');
  t.ok(existsSync(path.join(dataDir, 'dev-secrets.json')), 'dev secrets were generated in DATA_DIR');
  t.match(output, /DEVELOPMENT SECRETS IN USE/, 'a loud warning names the dev secrets');
  t.match(output, /\/docs/, 'it says where the docs are');
  t.match(output, /npm run token/, 'it says how to get a dev token');

  const health = await fetch(`${base}/healthz`);
  t.equal(health.status, 200);
  t.same(await health.json(), { status: 'ok' });
  t.equal((await fetch(`${base}/readyz`)).status, 200);
  const docs = await fetch(`${base}/docs/`);
  t.equal(docs.status, 200);
  t.match(await docs.text(), /swagger/i, 'Swagger UI is served at /docs');
  const contract = await fetch(`${base}/openapi.json`);
  t.equal((await contract.json()).openapi, '3.1.0');

  const minted = spawnSync(process.execPath, [...TSX, 'src/cli/token.ts', '--role', 'staff', '--org', 'demo', '--sub', 'alice'], {
    cwd: ROOT,
    env: cleanEnv({ DATA_DIR: dataDir }),
    encoding: 'utf8',
  });
  t.equal(minted.status, 0, minted.stderr);
  const token = minted.stdout.trim();
  t.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/, 'npm run token prints a JWT');
  const authed = await fetch(`${base}/v1/customers/nobody`, { headers: { authorization: `Bearer ${token}` } });
  t.equal(authed.status, 404, 'the dev token is accepted by the running server');

  child.kill('SIGTERM');
  t.equal(await exited, 0, 'SIGTERM shuts down with exit code 0');
  t.match(output, /shutting down/);
});

t.test('production refuses to start without secrets, naming the variable', async (t) => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'sc-prod-'));
  const run = spawnSync(process.execPath, [...TSX, 'src/server.ts'], {
    cwd: ROOT,
    env: cleanEnv({ NODE_ENV: 'production', DATA_DIR: dataDir, PORT: '0' }),
    encoding: 'utf8',
    timeout: 60_000,
  });
  t.equal(run.status, 1);
  t.match(run.stderr, /Configuration error: JWT_SECRET/);
  t.notOk(existsSync(path.join(dataDir, 'dev-secrets.json')), 'no dev secrets were written');
});

t.test('a malformed variable stops the process with its name', async (t) => {
  const run = spawnSync(process.execPath, [...TSX, 'src/server.ts'], {
    cwd: ROOT,
    env: cleanEnv({ DATA_DIR: mkdtempSync(path.join(tmpdir(), 'sc-bad-')), PORT: 'abc' }),
    encoding: 'utf8',
    timeout: 60_000,
  });
  t.equal(run.status, 1);
  t.match(run.stderr, /Configuration error: PORT/);
});
