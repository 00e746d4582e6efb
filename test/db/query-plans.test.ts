/**
 * Every list route's queries are served by an index. The test captures the exact statements
 * Drizzle sends while the list routes run (first pages and cursor pages), then EXPLAINs each
 * with its parameters and `enable_seqscan = off`: on a small test database the planner would
 * rightly prefer a sequential scan, so the setting turns the question into "is there an index
 * that serves this query shape?" A statement with no usable index still plans a Seq Scan,
 * and that fails the test for the tables that grow without bound. `npm run bench:scale`
 * measures the same routes at a million rows.
 */
import t from 'tap';
import { sql } from 'drizzle-orm';
import { openDatabase } from '../../src/db/client.js';
import { migrate } from '../../src/db/migrate.js';
import { rowsOf } from '../../src/db/util.js';
import { build } from '../fixtures/build.js';
import { fileUpload } from '../fixtures/multipart.js';

const BIG_TABLES = ['records', 'threads', 'messages', 'audit_events', 'documents', 'document_chunks', 'message_attachments', 'idempotency_keys', 'access_links', 'external_sessions', 'email_outbox', 'webhook_endpoints', 'webhook_deliveries', 'webhook_attempts'];

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Index Cond'?: string;
  Plans?: PlanNode[];
}

/**
 * Scans of growing tables that read the whole table: a Seq Scan, or an index walked from end
 * to end with no Index Cond (e.g. the primary key read backwards and filtered), which costs
 * as much at a million rows.
 */
function unboundedScans(node: PlanNode, found: string[] = []): string[] {
  const table = node['Relation Name'];
  if (table && BIG_TABLES.includes(table)) {
    if (node['Node Type'] === 'Seq Scan') found.push(`Seq Scan on ${table}`);
    if ((node['Node Type'] === 'Index Scan' || node['Node Type'] === 'Index Only Scan') && !node['Index Cond']) {
      found.push(`unbounded ${node['Node Type']} of ${node['Index Name']} on ${table}`);
    }
  }
  for (const child of node.Plans ?? []) unboundedScans(child, found);
  return found;
}

/** The parameter as an SQL literal (untyped, so the query's context decides its type). */
function literal(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (value instanceof Date) return `'${value.toISOString()}'`;
  if (Buffer.isBuffer(value)) return `'\\x${value.toString('hex')}'`;
  if (Array.isArray(value)) return `'{${value.map((v) => `"${String(v).replace(/["\\]/g, '\\$&')}"`).join(',')}}'`;
  return `'${String(value).replace(/'/g, "''")}'`;
}

const inline = (query: string, params: unknown[]) => query.replace(/\$(\d+)/g, (_, n: string) => literal(params[Number(n) - 1]));

t.test('list queries are bounded by an index on every growing table', async (t) => {
  const captured: { query: string; params: unknown[] }[] = [];
  let capturing = false;
  const database = await openDatabase({
    databaseUrl: process.env.DATABASE_URL,
    pgliteDir: null,
    onQuery: (query, params) => {
      if (capturing) captured.push({ query, params });
    },
  });
  t.teardown(() => database.close());
  await migrate(database.db);
  const h = await build(t, { database, env: { WEBHOOK_ALLOW_PRIVATE: 'true' } });
  const staff = h.staff();
  const admin = h.admin();

  await h.call('PUT', '/v1/customers/c-plan', h.integration(), { displayName: 'Plan Customer', email: 'plan@example.org', dateOfBirth: '1980-01-01' });
  const threadIds: string[] = [];
  for (let i = 0; i < 6; i++) {
    const res = await h.call('POST', '/v1/threads', staff, { record: { kind: 'customer', id: 'c-plan' }, subject: `S${i}`, body: 'b', replyAllowed: true });
    threadIds.push(res.json().thread.id);
  }
  const threadId = threadIds[0]!;
  for (let i = 0; i < 5; i++) await h.call('POST', `/v1/threads/${threadId}/messages`, staff, { body: `m${i}` });
  const link = await h.call('POST', `/v1/threads/${threadId}/access-links`, staff, { email: 'guest@example.org', expiresIn: '7d', verify: { dateOfBirth: true, phone: false } });
  await h.call('POST', `/v1/threads/${threadId}/access-links`, staff, { email: 'guest2@example.org', expiresIn: '7d', verify: { dateOfBirth: true, phone: false } });
  const libraryIds: string[] = [];
  for (let i = 0; i < 3; i++) {
    const up = fileUpload(`doc${i}.pdf`, Buffer.from(`%PDF-1.7\n${i}`));
    const stored = await h.app.inject({ method: 'POST', url: '/v1/library/documents', headers: { authorization: `Bearer ${staff}`, ...up.headers }, payload: up.payload });
    libraryIds.push(stored.json().id);
    const rec = fileUpload(`rec${i}.pdf`, Buffer.from(`%PDF-1.7\nr${i}`));
    await h.app.inject({ method: 'POST', url: '/v1/customers/c-plan/documents', headers: { authorization: `Bearer ${staff}`, ...rec.headers }, payload: rec.payload });
  }
  const hook = await h.call('POST', '/v1/webhooks', admin, { url: 'http://127.0.0.1:9/none', events: ['message.sent'] });
  await h.call('POST', '/v1/webhooks', admin, { url: 'http://127.0.0.1:9/other', events: ['thread.created'] });
  for (let i = 0; i < 2; i++) await h.call('POST', `/v1/threads/${threadId}/messages`, staff, { body: 'for the webhook' });
  // Messages with attachments, so the message list reads message_attachments.
  for (const documentId of libraryIds) {
    const sent = await h.call('POST', `/v1/threads/${threadId}/messages`, staff, { body: 'see attached', attachments: [{ documentId }] });
    t.equal(sent.statusCode, 201, 'a message with an attachment');
  }
  t.equal(link.statusCode, 201);
  t.equal(hook.statusCode, 201);

  const lists: [string, string][] = [
    ['Secure Messages tab', '/v1/customers/c-plan/threads?limit=2'],
    ['patron threads', '/v1/me/threads?limit=2'],
    ['messages', `/v1/threads/${threadId}/messages?limit=2`],
    ['access links', `/v1/threads/${threadId}/access-links?limit=1`],
    ['audit events', '/v1/audit-events?limit=2'],
    ['audit events of a thread', `/v1/audit-events?threadId=${threadId}&limit=2`],
    ['audit events of a record', '/v1/audit-events?recordId=c-plan&limit=2'],
    ['library', '/v1/library/documents?limit=2'],
    ['record repository', '/v1/customers/c-plan/documents?limit=2'],
    ['webhooks', '/v1/webhooks?limit=1'],
    ['webhook deliveries', `/v1/webhooks/${hook.json().id}/deliveries?limit=1`],
  ];
  const tokenFor = (path: string) => (path.startsWith('/v1/me/') ? h.patron('customer:c-plan') : path.includes('webhooks') || path.includes('audit') ? admin : staff);
  const listed = async (path: string) => {
    capturing = true;
    try {
      return await h.call('GET', path, tokenFor(path));
    } finally {
      capturing = false;
    }
  };
  for (const [label, path] of lists) {
    const first = await listed(path);
    t.equal(first.statusCode, 200, `${label}: page 1 answered`);
    const cursor = first.json().nextCursor as string | null;
    t.ok(cursor, `${label}: has a second page`);
    if (cursor) t.equal((await listed(`${path}&cursor=${encodeURIComponent(cursor)}`)).statusCode, 200, `${label}: cursor page answered`);
  }

  const selects = captured.filter((c) => /^\s*select/i.test(c.query) && BIG_TABLES.some((table) => c.query.includes(`"${table}"`)));
  t.ok(selects.length >= 20, `captured ${selects.length} list statements`);
  t.ok(
    selects.some((c) => c.query.includes('"message_attachments"')),
    'the attachments of a message page are among them',
  );
  const seen = new Set<string>();
  for (const { query, params } of selects) {
    if (seen.has(query)) continue;
    seen.add(query);
    const plan = await database.db.transaction(async (tx) => {
      await tx.execute(sql`set local enable_seqscan = off`);
      return rowsOf<Record<string, unknown>>(await tx.execute(sql.raw(`explain (format json) ${inline(query, params)}`)));
    });
    const raw = plan[0]!['QUERY PLAN'];
    const root = (typeof raw === 'string' ? JSON.parse(raw) : raw) as { Plan: PlanNode }[];
    t.same(unboundedScans(root[0]!.Plan), [], `index-bounded: ${query.slice(0, 160)}`);
  }
});
