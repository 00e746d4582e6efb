/**
 * Key rotation with no downtime: write under v1, start with v2,v1 (both read), run
 * keys:rewrap as its own process and kill it mid-run, run it again (0 rows left on v1), then
 * start with v2 alone: everything reads, and no file byte was rewritten.
 */
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { build, newKey, newOrgId, openTestDatabase, type Harness } from '../../fixtures/build.js';
import { fileUpload } from '../../fixtures/multipart.js';
import { openDatabase, type Database } from '../../../src/db/client.js';
import { migrate } from '../../../src/db/migrate.js';
import { rowsOf } from '../../../src/db/util.js';
import * as f from '../../fixtures/files.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');

async function chunkDigest(database: Database, documentId: string): Promise<string> {
  const rows = rowsOf<{ d: string }>(
    await database.db.execute(sql`select encode(data, 'hex') as d from document_chunks where document_id = ${documentId} order by idx`),
  );
  return createHash('sha256').update(rows.map((r) => r.d).join('|')).digest('hex');
}

function keysCli(args: string[], env: Record<string, string>) {
  return spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/keys.ts', ...args], { cwd: ROOT, env: { ...process.env, ...env }, encoding: 'utf8' });
}

t.test('rotate v1 → v2 while rows keep reading, with a killed and resumed re-wrap', async (t) => {
  // The CLI runs as its own process, so the data must live where it can open it: a private
  // PostgreSQL database, or a PGlite folder (opened by one process at a time).
  let database: Database;
  let cliEnv: Record<string, string>;
  if (process.env.DATABASE_URL) {
    database = await openTestDatabase(t);
    cliEnv = { DATABASE_URL: (database as Database & { url: string }).url };
  } else {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'sc-rotate-'));
    database = await openDatabase({ pgliteDir: path.join(dataDir, 'pglite') });
    await migrate(database.db);
    cliEnv = { DATA_DIR: dataDir };
    t.teardown(() => database.close());
  }
  const orgId = newOrgId();
  const v1 = newKey();
  const v2 = newKey();
  const common = { JWT_SECRET: 'x'.repeat(40), AUDIT_CHECKPOINT_KEY: newKey(), NODE_ENV: 'test' };

  const write = async (h: Harness, n: number, prefix: string) => {
    for (let i = 0; i < n; i++) {
      await h.call('PUT', `/v1/customers/${prefix}-${i}`, h.integration(), { displayName: `Person ${i}`, phone: '+1 555 0100' });
      await h.call('POST', '/v1/threads', h.staff(), { record: { kind: 'customer', id: `${prefix}-${i}` }, subject: `S${i}`, body: `B${i}`, replyAllowed: true });
    }
    const up = fileUpload('scan.pdf', f.pdf());
    const res = await h.app.inject({ method: 'POST', url: `/v1/customers/${prefix}-0/documents`, headers: { ...up.headers, authorization: `Bearer ${h.staff()}` }, payload: up.payload });
    return res.json().id as string;
  };
  const readAll = async (h: Harness, prefix: string, n: number) => {
    for (let i = 0; i < n; i++) {
      const rec = await h.call('GET', `/v1/customers/${prefix}-${i}`, h.staff());
      const threads = await h.call('GET', `/v1/customers/${prefix}-${i}/threads`, h.staff());
      if (rec.statusCode !== 200 || threads.json().items[0]?.subject !== `S${i}`) return false;
    }
    return true;
  };

  const before = await build(t, { database, orgId, encryptionKeys: `v1:${v1}` });
  const oldDocument = await write(before, 60, 'old');
  await before.app.close();
  const digest = await chunkDigest(database, oldDocument);

  const both = await build(t, { database, orgId, encryptionKeys: `v2:${v2},v1:${v1}` });
  t.ok(await readAll(both, 'old', 60), 'v2,v1 reads rows written under v1');
  await write(both, 5, 'new');
  t.ok(await readAll(both, 'new', 5), 'and rows written under v2');
  await both.app.close();
  if (!process.env.DATABASE_URL) await database.close(); // PGlite: one process at a time

  const env = { ...cliEnv, ...common, ENCRYPTION_KEYS: `v2:${v2},v1:${v1}` };
  const status0 = keysCli(['status', '--org', orgId], env);
  t.match(status0.stdout, /records: .*v1=60/, `keys:status counts v1 rows:\n${status0.stdout}${status0.stderr}`);

  // Kill -9 after the first progress line.
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/keys.ts', 'rewrap', '--org', orgId, '--batch', '5'], { cwd: ROOT, env: { ...process.env, ...env } });
  await new Promise<void>((resolve) => {
    child.stdout.on('data', (d: Buffer) => {
      if (/rewrapped \d+ rows/.test(d.toString())) child.kill('SIGKILL');
    });
    child.on('exit', () => resolve());
  });
  const mid = keysCli(['status', '--org', orgId], env);
  const left = Number(/rows not on v2: (\d+)/.exec(mid.stdout)?.[1]);
  t.ok(left > 0 && left < 121, `the killed run left work behind (${left} rows)`);

  const resumed = keysCli(['rewrap', '--org', orgId, '--batch', '5'], env);
  t.equal(resumed.status, 0, resumed.stderr);
  t.match(resumed.stdout, /done: \d+ rows rewrapped to v2; 0 remaining/);
  const after = keysCli(['status', '--org', orgId], env);
  t.match(after.stdout, /rows not on v2: 0/, after.stdout);
  t.notMatch(after.stdout, /v1=/, 'no row on v1 in any table');

  if (!process.env.DATABASE_URL) {
    database = await openDatabase({ pgliteDir: path.join(cliEnv.DATA_DIR!, 'pglite') });
    t.teardown(() => database.close());
  }
  const v2Only = await build(t, { database, orgId, encryptionKeys: `v2:${v2}` });
  t.ok(await readAll(v2Only, 'old', 60), 'v2 alone reads the rows first written under v1');
  t.ok(await readAll(v2Only, 'new', 5), 'and the v2 rows');
  const content = await v2Only.call('GET', `/v1/documents/${oldDocument}/content`, v2Only.staff());
  t.ok(content.rawPayload.equals(f.pdf()), 'the file written under v1 still downloads');
  t.equal(await chunkDigest(database, oldDocument), digest, 'its stored chunks are byte-identical: rotation never re-encrypts files');
});
