/**
 * Audit: bad query strings to GET /v1/audit-events are refused with problem+json; filters and
 * ordering work; reading the trail writes nothing to it.
 */
import t from 'tap';
import { build, type Harness } from '../../fixtures/build.js';
import { assertProblem, cursorOf } from '../../fixtures/problems.js';

interface AuditEvent {
  seq: number;
  action: string;
  outcome: string;
  threadId: string | null;
}

t.test('audit query validation', async (t) => {
  const h: Harness = await build(t);
  const admin = h.admin();
  const staff = h.staff();
  const seen: { status: number; what: string }[] = [];
  const call: Harness['call'] = async (...args) => {
    const res = await h.call(...args);
    seen.push({ status: res.statusCode, what: `${String(args[0])} ${args[1]}` });
    return res;
  };

  // Some history: a record, two threads, a reply, a read.
  t.equal((await call('PUT', '/v1/customers/c-1', h.integration(), { displayName: 'Customer One' })).statusCode, 201);
  const threadIds: string[] = [];
  for (const subject of ['one', 'two']) {
    const res = await call('POST', '/v1/threads', staff, { record: { kind: 'customer', id: 'c-1' }, subject, body: 'Hello', replyAllowed: true });
    t.equal(res.statusCode, 201, `thread ${subject} created`);
    threadIds.push((res.json() as { thread: { id: string } }).thread.id);
  }
  t.equal((await call('GET', `/v1/threads/${threadIds[0]}`, staff)).statusCode, 200);

  const head = async () => {
    const res = await call('GET', '/v1/audit-events/verify', admin);
    t.equal(res.statusCode, 200, 'verify');
    return (res.json() as { valid: boolean; head: { seq: number } });
  };
  const before = await head();
  t.ok(before.valid, 'chain valid');
  t.ok(before.head.seq > 0, 'there is history');

  await t.test('bad query strings are refused', async (t) => {
    const cases: [string, string][] = [
      ['from=yesterday', 'from not a date-time'],
      ['from=2026-01-01', 'from a date without time'],
      ['to=2026-13-01T00:00:00Z', 'to with month 13'],
      ['order=sideways', 'order not asc/desc'],
      ['limit=0', 'limit 0'],
      ['limit=201', 'limit 201'],
      ['limit=abc', 'limit not a number'],
      ['outcome=maybe', 'unknown outcome'],
      ['threadId=not-uuid', 'threadId not a uuid'],
      [`action=${'a'.repeat(65)}`, 'action over 64 chars'],
      [`recordId=${'r'.repeat(129)}`, 'recordId over 128 chars'],
      ['foo=1', 'unknown query parameter'],
    ];
    for (const [q, label] of cases) {
      assertProblem(t, await call('GET', `/v1/audit-events?${q}`, admin), 400, 'validation_failed', `?${q} (${label})`);
    }
  });

  await t.test('bad cursors are refused', async (t) => {
    assertProblem(t, await call('GET', '/v1/audit-events?cursor=!!!', admin), 400, 'invalid_cursor', 'cursor=!!!');
    assertProblem(t, await call('GET', '/v1/audit-events?cursor=garbage', admin), 400, 'invalid_cursor', 'cursor=garbage');
    assertProblem(t, await call('GET', `/v1/audit-events?cursor=${cursorOf(['x'])}`, admin), 400, 'invalid_cursor', 'cursor ["x"]');
    assertProblem(t, await call('GET', `/v1/audit-events?cursor=${cursorOf([1, 2])}`, admin), 400, 'invalid_cursor', 'cursor [1,2]');
    assertProblem(t, await call('GET', `/v1/audit-events?cursor=${'a'.repeat(513)}`, admin), 400, 'validation_failed', 'cursor over 512 chars');
  });

  await t.test('a numeric cursor that is not a sequence number is never a 5xx', async (t) => {
    const negative = await call('GET', `/v1/audit-events?cursor=${cursorOf([-1])}`, admin);
    assertProblem(t, negative, 400, 'invalid_cursor', 'cursor [-1]');
    for (const key of [1.5, 1e300]) {
      const res = await call('GET', `/v1/audit-events?cursor=${cursorOf([key])}`, admin);
      assertProblem(t, res, 400, 'invalid_cursor', `cursor [${key}]`);
    }
  });

  await t.test('the action filter returns only that action', async (t) => {
    const res = await call('GET', '/v1/audit-events?action=thread.created&limit=200', admin);
    t.equal(res.statusCode, 200);
    const items = (res.json() as { items: AuditEvent[] }).items;
    t.equal(items.length, 2, 'both thread.created events');
    t.ok(
      items.every((e) => e.action === 'thread.created'),
      'only thread.created',
    );
    t.same(items.map((e) => e.threadId).sort(), [...threadIds].sort(), 'one per thread');
  });

  await t.test('threadId and outcome filters', async (t) => {
    const res = await call('GET', `/v1/audit-events?threadId=${threadIds[0]}&outcome=success&limit=200`, admin);
    t.equal(res.statusCode, 200);
    const items = (res.json() as { items: AuditEvent[] }).items;
    t.ok(items.length >= 3, 'created, message.sent, opened');
    t.ok(
      items.every((e) => e.threadId === threadIds[0] && e.outcome === 'success'),
      'only that thread and outcome',
    );
  });

  await t.test('order=desc returns seq descending', async (t) => {
    const asc = await call('GET', '/v1/audit-events?limit=200', admin);
    const desc = await call('GET', '/v1/audit-events?order=desc&limit=200', admin);
    t.equal(asc.statusCode, 200);
    t.equal(desc.statusCode, 200);
    const ascSeq = (asc.json() as { items: AuditEvent[] }).items.map((e) => e.seq);
    const descSeq = (desc.json() as { items: AuditEvent[] }).items.map((e) => e.seq);
    t.ok(descSeq.length > 1, 'several events');
    t.ok(
      descSeq.every((s, i) => i === 0 || s < descSeq[i - 1]!),
      'strictly descending',
    );
    t.ok(
      ascSeq.every((s, i) => i === 0 || s > ascSeq[i - 1]!),
      'default is strictly ascending',
    );
    t.same(descSeq, [...ascSeq].reverse(), 'desc is asc reversed');

    const page1 = await call('GET', '/v1/audit-events?order=desc&limit=2', admin);
    const p1 = page1.json() as { items: AuditEvent[]; nextCursor: string | null };
    t.type(p1.nextCursor, 'string', 'has a next page');
    const page2 = await call('GET', `/v1/audit-events?order=desc&limit=2&cursor=${p1.nextCursor}`, admin);
    t.equal(page2.statusCode, 200);
    const p2 = page2.json() as { items: AuditEvent[] };
    t.same([...p1.items, ...p2.items].map((e) => e.seq), descSeq.slice(0, 4), 'second desc page continues downwards');
  });

  await t.test('reading and refused queries write nothing to the trail', async (t) => {
    const after = await head();
    t.equal(after.head.seq, before.head.seq, 'chain head unchanged');
    t.ok(after.valid, 'chain still valid');
  });

  t.same(
    seen.filter((s) => s.status >= 500),
    [],
    'no answer was a 5xx',
  );
});
