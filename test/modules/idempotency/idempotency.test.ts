import t from 'tap';
import { build } from '../../fixtures/build.js';

t.test('concurrent retries with one Idempotency-Key create exactly one thread', async (t) => {
  const h = await build(t);
  await h.call('PUT', '/v1/customers/c-1', h.integration(), { displayName: 'Ada' });
  const body = { record: { kind: 'customer', id: 'c-1' }, subject: 'Once', body: 'only once', replyAllowed: false };
  const headers = { 'idempotency-key': 'retry-storm-1' };
  const answers = await Promise.all(Array.from({ length: 6 }, () => h.call('POST', '/v1/threads', h.staff(), body, headers)));
  t.same(answers.map((a) => a.statusCode), [201, 201, 201, 201, 201, 201]);
  const ids = new Set(answers.map((a) => a.json().thread.id));
  t.equal(ids.size, 1, 'every answer names the same thread');
  t.equal(answers.filter((a) => a.headers['idempotent-replayed'] === 'true').length, 5, 'five answers are replays');
  const list = await h.call('GET', '/v1/customers/c-1/threads', h.staff());
  t.equal(list.json().items.length, 1, 'one thread exists');
  const audit = await h.call('GET', '/v1/audit-events?action=thread.created', h.admin());
  t.equal(audit.json().items.length, 1, 'and one thread.created event');

  const other = await h.call('POST', '/v1/threads', h.staff('staff-bob'), body, headers);
  t.equal(other.statusCode, 201);
  t.not(other.json().thread.id, [...ids][0], 'keys are scoped to the caller: another staff member gets a new thread');

  const threadId = [...ids][0];
  const sends = await Promise.all(
    Array.from({ length: 4 }, () => h.call('POST', `/v1/threads/${threadId}/messages`, h.staff(), { body: 'follow-up' }, { 'idempotency-key': 'm-1' })),
  );
  t.same(sends.map((s) => s.statusCode), [201, 201, 201, 201], 'every retry is answered 201');
  t.equal(new Set(sends.map((s) => s.json().id)).size, 1, 'one message id for four retries');
  t.type(sends[0]!.json().id, 'string');
  const messages = await h.call('GET', `/v1/threads/${threadId}/messages`, h.staff());
  t.equal(messages.json().items.length, 2, 'the first message and one follow-up');
});
