/**
 * Threads: bad input to POST/GET/PATCH /v1/threads and the record thread lists is refused
 * with problem+json and nothing is written; Idempotency-Key replays and refuses reuse.
 */
import { randomUUID } from 'node:crypto';
import t from 'tap';
import { build, type Harness } from '../../fixtures/build.js';
import { assertProblem, cursorOf } from '../../fixtures/problems.js';

interface ThreadView {
  id: string;
  state: string;
  replyAllowed: boolean;
  subject: string;
}

t.test('threads validation', async (t) => {
  const h: Harness = await build(t);
  const staff = h.staff();
  const seen: { status: number; what: string }[] = [];
  const call: Harness['call'] = async (...args) => {
    const res = await h.call(...args);
    seen.push({ status: res.statusCode, what: `${String(args[0])} ${args[1]}` });
    return res;
  };

  for (const id of ['c-1', 'c-2', 'c-3']) {
    const res = await call('PUT', `/v1/customers/${id}`, h.integration(), { displayName: `Customer ${id}` });
    t.equal(res.statusCode, 201, `record ${id} created`);
  }

  async function threadsOf(id: string): Promise<ThreadView[]> {
    const res = await call('GET', `/v1/customers/${id}/threads?limit=200`, staff);
    t.equal(res.statusCode, 200, `list ${id}`);
    return (res.json() as { items: ThreadView[] }).items;
  }

  const valid = { record: { kind: 'customer', id: 'c-1' }, subject: 'Your appointment', body: 'See you on Monday.', replyAllowed: true };

  await t.test('POST /v1/threads refuses bad bodies and writes nothing', async (t) => {
    const { subject: _s, ...noSubject } = valid;
    const cases: [string, unknown][] = [
      ['missing subject', noSubject],
      ['subject of 201 chars', { ...valid, subject: 's'.repeat(201) }],
      ['empty subject', { ...valid, subject: '' }],
      ['body of 20001 chars', { ...valid, body: 'b'.repeat(20001) }],
      ['empty body', { ...valid, body: '' }],
      ["replyAllowed as the string 'true'", { ...valid, replyAllowed: 'true' }],
      ['replyAllowed as 1', { ...valid, replyAllowed: 1 }],
      ["record.kind 'patient'", { ...valid, record: { kind: 'patient', id: 'c-1' } }],
      ['record id with a space', { ...valid, record: { kind: 'customer', id: 'c 1' } }],
      ['extra field on record', { ...valid, record: { kind: 'customer', id: 'c-1', extra: 1 } }],
      ['extra field', { ...valid, priority: 'high' }],
      ['empty body object', {}],
    ];
    for (const [label, body] of cases) {
      const res = await call('POST', '/v1/threads', staff, body);
      assertProblem(t, res, 400, 'validation_failed', label);
    }
    const extra = await call('POST', '/v1/threads', staff, { ...valid, priority: 'high' });
    const errors = (extra.json() as { errors?: { path: string }[] }).errors;
    t.match(errors?.[0]?.path, /priority/, 'errors[0].path names the extra field');
    t.same(await threadsOf('c-1'), [], 'no thread was created on c-1');
  });

  await t.test('POST /v1/threads on a record that does not exist', async (t) => {
    const res = await call('POST', '/v1/threads', staff, { ...valid, record: { kind: 'customer', id: 'c-missing' } });
    assertProblem(t, res, 422, 'record_not_found', 'missing record');
    const vol = await call('POST', '/v1/threads', staff, { ...valid, record: { kind: 'volunteer', id: 'c-1' } });
    assertProblem(t, vol, 422, 'record_not_found', 'right id, wrong kind');
    t.same(await threadsOf('c-1'), [], 'still no thread on c-1');
  });

  await t.test('GET/PATCH /v1/threads/:threadId', async (t) => {
    assertProblem(t, await call('GET', '/v1/threads/not-a-uuid', staff), 400, 'validation_failed', 'GET not-a-uuid');
    assertProblem(t, await call('PATCH', '/v1/threads/not-a-uuid', staff, { state: 'closed' }), 400, 'validation_failed', 'PATCH not-a-uuid');
    assertProblem(t, await call('GET', `/v1/threads/${randomUUID()}`, staff), 404, 'not_found', 'GET random uuid');
    assertProblem(t, await call('PATCH', `/v1/threads/${randomUUID()}`, staff, { state: 'closed' }), 404, 'not_found', 'PATCH random uuid');

    const created = await call('POST', '/v1/threads', staff, { ...valid, record: { kind: 'customer', id: 'c-3' } });
    t.equal(created.statusCode, 201, 'thread created');
    const thread = (created.json() as { thread: ThreadView }).thread;
    const before = (await call('GET', `/v1/threads/${thread.id}`, staff)).json() as ThreadView;

    const patches: [string, unknown][] = [
      ['PATCH {}', {}],
      ["PATCH state 'archived'", { state: 'archived' }],
      ["PATCH replyAllowed 'false'", { replyAllowed: 'false' }],
      ['PATCH extra field', { state: 'closed', subject: 'new' }],
    ];
    for (const [label, body] of patches) {
      assertProblem(t, await call('PATCH', `/v1/threads/${thread.id}`, staff, body), 400, 'validation_failed', label);
    }
    const after = (await call('GET', `/v1/threads/${thread.id}`, staff)).json() as ThreadView;
    t.same(after, before, 'thread unchanged by refused patches');
  });

  await t.test('thread list query validation', async (t) => {
    const base = '/v1/customers/c-1/threads';
    for (const q of ['limit=0', 'limit=201', 'limit=abc', 'limit=1.5', 'foo=1']) {
      assertProblem(t, await call('GET', `${base}?${q}`, staff), 400, 'validation_failed', `?${q}`);
    }
    assertProblem(t, await call('GET', `${base}?cursor=garbage`, staff), 400, 'invalid_cursor', 'cursor=garbage');
    assertProblem(t, await call('GET', `${base}?cursor=${cursorOf(['x'])}`, staff), 400, 'invalid_cursor', 'cursor ["x"]');
    assertProblem(t, await call('GET', `${base}?cursor=${cursorOf({ a: 1 })}`, staff), 400, 'invalid_cursor', 'cursor object');
    assertProblem(t, await call('GET', `${base}?cursor=${cursorOf([1, 2])}`, staff), 400, 'invalid_cursor', 'cursor [1,2]');
    assertProblem(t, await call('GET', `${base}?cursor=${'a'.repeat(513)}`, staff), 400, 'validation_failed', 'cursor over 512 chars');
    assertProblem(t, await call('GET', '/v1/customers/a%20b/threads', staff), 400, 'validation_failed', 'record id with a space');
    const ok = await call('GET', `${base}?limit=200`, staff);
    t.equal(ok.statusCode, 200, 'limit=200 is accepted');
  });

  await t.test('a cursor of the right shape but wrong values is a 400, not a 5xx', async (t) => {
    const base = '/v1/customers/c-1/threads';
    const res = await call('GET', `${base}?cursor=${cursorOf(['x', 'y'])}`, staff);
    t.ok(res.statusCode < 500, `["x","y"] cursor is not a 5xx (got ${res.statusCode})`);
    assertProblem(t, res, 400, 'invalid_cursor', 'cursor ["x","y"]');
    const res2 = await call('GET', `${base}?cursor=${cursorOf(['2026-01-01T00:00:00.000Z', 'not-a-uuid'])}`, staff);
    t.ok(res2.statusCode < 500, `[date,"not-a-uuid"] cursor is not a 5xx (got ${res2.statusCode})`);
    assertProblem(t, res2, 400, 'invalid_cursor', 'cursor [date, not-a-uuid]');
    t.same(await threadsOf('c-1'), [], 'nothing was written');
  });

  await t.test('Idempotency-Key', async (t) => {
    const body = { ...valid, record: { kind: 'customer', id: 'c-2' } };
    const headers = { 'idempotency-key': `key-${randomUUID()}` };
    const first = await call('POST', '/v1/threads', staff, body, headers);
    t.equal(first.statusCode, 201, 'first is 201');
    t.notOk(first.headers['idempotent-replayed'], 'first is not a replay');
    const second = await call('POST', '/v1/threads', staff, body, headers);
    t.equal(second.statusCode, 201, 'second is 201');
    t.equal(second.headers['idempotent-replayed'], 'true', 'second is marked as a replay');
    const a = first.json() as { thread: ThreadView; message: { id: string } };
    const b = second.json() as { thread: ThreadView; message: { id: string } };
    t.equal(b.thread.id, a.thread.id, 'same thread id');
    t.equal(b.message.id, a.message.id, 'same first message id');
    t.equal((await threadsOf('c-2')).length, 1, 'exactly one thread on c-2');

    const reused = await call('POST', '/v1/threads', staff, { ...body, subject: 'Something else' }, headers);
    assertProblem(t, reused, 422, 'idempotency_key_reused', 'same key, different body');
    t.equal((await threadsOf('c-2')).length, 1, 'still exactly one thread on c-2');

    const spaced = await call('POST', '/v1/threads', staff, body, { 'idempotency-key': 'has a space' });
    assertProblem(t, spaced, 400, 'validation_failed', 'key with a space');
    const long = await call('POST', '/v1/threads', staff, body, { 'idempotency-key': 'k'.repeat(256) });
    assertProblem(t, long, 400, 'validation_failed', 'key of 256 chars');
    t.equal((await threadsOf('c-2')).length, 1, 'refused keys wrote nothing');

    const max = await call('POST', '/v1/threads', staff, body, { 'idempotency-key': 'k'.repeat(255) });
    t.equal(max.statusCode, 201, 'a 255-char key is accepted');
    t.equal((await threadsOf('c-2')).length, 2, 'and creates one thread');
  });

  t.same(
    seen.filter((s) => s.status >= 500),
    [],
    'no answer was a 5xx',
  );
});
