import t from 'tap';
import { sql } from 'drizzle-orm';
import { openDatabase } from '../../src/db/client.js';
import { migrate, readMigrations } from '../../src/db/migrate.js';
import { rowsOf } from '../../src/db/util.js';
import { openTestDatabase } from '../fixtures/build.js';

t.test('migrations apply once, in order, and are idempotent', async (t) => {
  // A private in-memory database even in the PostgreSQL run: this test needs an empty schema.
  const database = await openDatabase({ pgliteDir: null });
  t.teardown(() => database.close());
  const all = readMigrations();
  t.ok(all.length >= 2, 'the drizzle/ journal lists the migrations');
  t.same(await migrate(database.db), all.map((m) => m.tag), 'a fresh database gets every migration');
  t.same(await migrate(database.db), [], 'a second run applies nothing');
  const tables = rowsOf<{ table_name: string }>(
    await database.db.execute(sql`select table_name from information_schema.tables where table_schema = 'public' order by 1`),
  ).map((r) => r.table_name);
  t.same(tables, [
    'access_links',
    'audit_chain_heads',
    'audit_events',
    'document_chunks',
    'documents',
    'email_outbox',
    'external_sessions',
    'idempotency_keys',
    'message_attachments',
    'messages',
    'org_settings',
    'records',
    'schema_migrations',
    'threads',
    'webhook_attempts',
    'webhook_deliveries',
    'webhook_endpoints',
  ]);
});

t.test('a migration edited after it was applied stops the start', async (t) => {
  const database = await openDatabase({ pgliteDir: null });
  t.teardown(() => database.close());
  await migrate(database.db);
  const edited = readMigrations().map((m, i) => (i === 0 ? { ...m, hash: 'f'.repeat(64) } : m));
  await t.rejects(migrate(database.db, edited), /was changed after it was applied/);
});

t.test('concurrent starts against one PostgreSQL migrate exactly once', { skip: !process.env.DATABASE_URL && 'needs DATABASE_URL' }, async (t) => {
  // An empty database of its own, so there is something to apply and to race for.
  const fresh = await openTestDatabase(t, { migrated: false });
  const instances = await Promise.all([1, 2, 3].map(() => openDatabase({ databaseUrl: fresh.url, pgliteDir: null, poolSize: 2 })));
  t.teardown(() => Promise.all(instances.map((d) => d.close())));
  const applied = await Promise.all(instances.map((d) => migrate(d.db)));
  const tags = readMigrations().map((m) => m.tag);
  t.ok(tags.length > 0);
  t.same(
    applied.map((a) => a.length).sort((x, y) => y - x),
    [tags.length, 0, 0],
    'one instance applied every migration; the two that waited on the lock found nothing to do, and none failed',
  );
  t.same(applied.find((a) => a.length > 0), tags, 'in order');
  const rows = rowsOf<{ tag: string; n: number }>(await fresh.db.execute(sql`select tag, count(*)::int as n from schema_migrations group by tag order by tag`));
  t.same(
    rows.map((r) => [r.tag, r.n]),
    [...tags].sort().map((tag) => [tag, 1]),
    'each migration is recorded once',
  );
});
