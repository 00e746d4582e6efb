/**
 * Inputs that once reached SQL and failed there (500) must be 400s, and an internal error's
 * log line must not carry the driver's message (it can quote PHI parameters).
 */
import t from 'tap';
import { sql } from 'drizzle-orm';
import { build, openTestDatabase } from '../fixtures/build.js';
import { createLogger, errorForLog } from '../../src/lib/logger.js';
import { assertProblem, cursorOf } from '../fixtures/problems.js';

t.test('hostile query values are 400, never 500', async (t) => {
  const h = await build(t);
  await h.call('PUT', '/v1/customers/c-1', h.integration(), { displayName: 'A' });
  const urls = [
    '/v1/library/documents?q=%00x',
    '/v1/customers/c-1/documents?q=a%01b',
    '/v1/audit-events?action=%00',
    '/v1/audit-events?recordId=%00',
    '/v1/audit-events?actorId=x%00',
    '/v1/audit-events?from=2016-12-31T23:59:60Z',
    '/v1/audit-events?from=0000-01-01T00:00:00Z',
    `/v1/customers/c-1/threads?cursor=${cursorOf(['2024-02-30T00:00:00.000Z', '01a23cf4-82a5-7095-a60f-4cae21c088bf'])}`,
    `/v1/customers/c-1/threads?cursor=${cursorOf(['0000-01-01T00:00:00.000Z', '01a23cf4-82a5-7095-a60f-4cae21c088bf'])}`,
  ];
  for (const url of urls) {
    const res = await h.call('GET', url, h.admin());
    t.ok(res.statusCode === 400, `${url} is 400 (got ${res.statusCode})`);
    t.match(String(res.headers['content-type']), /problem\+json/);
  }
  assertProblem(t, await h.call('GET', '/v1/customers/c-1', h.token({ sub: 'a\u0000b', role: 'staff' })), 401, 'unauthorized', 'a NUL in a claim');
});

t.test('HEAD does not run audited GET handlers', async (t) => {
  const h = await build(t);
  await h.call('PUT', '/v1/customers/c-1', h.integration(), { displayName: 'A' });
  const res = await h.call('HEAD', '/v1/customers/c-1', h.staff());
  t.not(res.statusCode, 200);
  const events = (await h.call('GET', '/v1/audit-events?action=record.viewed', h.admin())).json().items;
  t.same(events, [], 'no record.viewed from a HEAD');
});

t.test('an unhandled database error is logged by class, SQLSTATE and frames: never its message, query or parameters', async (t) => {
  // A database of its own: the broken table must not reach another test.
  const h = await build(t, { database: await openTestDatabase(t), captureLogs: true, expectServerErrors: true });
  await h.app.database.db.execute(sql.raw('alter table records add constraint refuse_every_insert check (false) not valid'));
  const marker = 'c-mrn-4471-quartz';
  const res = await h.call('PUT', `/v1/customers/${marker}`, h.integration(), { displayName: 'Quentin Quartzfield', email: 'quentin.q@example.org' });
  assertProblem(t, res, 500, 'internal_error', 'a failed insert');
  t.notOk(res.body.includes(marker) || res.body.includes('refuse_every_insert'), 'the answer says nothing internal');
  const lines = h.logs.flatMap((chunk) => chunk.split('\n')).filter(Boolean);
  const unhandled = lines.map((l) => JSON.parse(l)).find((l) => l.msg === 'unhandled error');
  t.ok(unhandled, 'the error is logged');
  t.equal(unhandled.err.code, '23514', 'with its SQLSTATE');
  t.type(unhandled.err.type, 'string', 'and its class');
  t.match(unhandled.err.stack, /^\s+at /, 'and its frames');
  t.notOk('message' in unhandled.err, 'but no message');
  for (const line of lines.filter((l) => !l.includes('"req":'))) {
    t.notOk(/Failed query|params:|refuse_every_insert|Quentin|quentin\.q|c-mrn-4471/.test(line), `no query, parameter or value in: ${JSON.parse(line).msg}`);
  }
});

t.test('errorForLog keeps a plain error\'s message and drops a driver error\'s', async (t) => {
  const database = await openTestDatabase(t);
  const failed = await database.db.execute(sql`select ${'phi-value-8812'}::uuid`).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(failed, 'the query failed');
  const logged = JSON.stringify(errorForLog(failed));
  t.notOk(logged.includes('phi-value-8812'), 'the parameter is not in the log');
  t.notOk(logged.includes('Failed query'), 'nor the query');
  t.match(errorForLog(failed), { code: '22P02' }, 'the SQLSTATE is');
  t.same(errorForLog(new Error('ENCRYPTION_KEYS is missing')).message, 'ENCRYPTION_KEYS is missing', 'a plain error keeps its message');
  t.same(errorForLog('a string'), { type: 'string' });
  const eperm = Object.assign(new Error("EROFS: read-only file system, mkdir '/data'"), { code: 'EROFS' });
  t.match(errorForLog(eperm), { code: 'EROFS', message: /read-only file system/ }, 'a system error code is not taken for a SQLSTATE');
  const out: string[] = [];
  const logger = createLogger('info', { write: (line: string) => out.push(line) });
  logger.error({ err: failed, error: failed }, 'x');
  t.notOk(out.join('').includes('phi-value-8812'), 'the serializer applies under err and error');
});
