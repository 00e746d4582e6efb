/**
 * Messages: bad input to POST /messages and POST /read is refused with problem+json and
 * nothing is written; closed threads and reply rules hold; replays do not duplicate; read
 * receipts are set by the other side only, once.
 */
import { randomUUID } from 'node:crypto';
import t from 'tap';
import { build, type Harness } from '../../fixtures/build.js';
import { assertProblem, cursorOf } from '../../fixtures/problems.js';

interface MessageView {
  id: string;
  threadId: string;
  author: { kind: string; id: string };
  body: string;
  readAt: string | null;
}
interface Receipt {
  threadId: string;
  readAt: string | null;
  messageIds: string[];
}

t.test('messages validation', async (t) => {
  const h: Harness = await build(t);
  const staff = h.staff();
  const patron = h.patron('customer:c-1');
  const seen: { status: number; what: string }[] = [];
  const call: Harness['call'] = async (...args) => {
    const res = await h.call(...args);
    seen.push({ status: res.statusCode, what: `${String(args[0])} ${args[1]}` });
    return res;
  };

  t.equal((await call('PUT', '/v1/customers/c-1', h.integration(), { displayName: 'Customer One' })).statusCode, 201, 'record created');

  async function newThread(replyAllowed: boolean, subject = 'Subject'): Promise<{ id: string; firstMessageId: string }> {
    const res = await call('POST', '/v1/threads', staff, { record: { kind: 'customer', id: 'c-1' }, subject, body: 'First message', replyAllowed });
    t.equal(res.statusCode, 201, `thread "${subject}" created`);
    const created = res.json() as { thread: { id: string }; message: { id: string } };
    return { id: created.thread.id, firstMessageId: created.message.id };
  }

  async function messagesOf(threadId: string): Promise<MessageView[]> {
    const res = await call('GET', `/v1/threads/${threadId}/messages?limit=200`, staff);
    t.equal(res.statusCode, 200, 'list messages');
    return (res.json() as { items: MessageView[] }).items;
  }

  const open = await newThread(true, 'open');
  const noReply = await newThread(false, 'no reply');

  await t.test('POST messages refuses bad bodies and writes nothing', async (t) => {
    const url = `/v1/threads/${open.id}/messages`;
    const cases: [string, unknown][] = [
      ["body ''", { body: '' }],
      ['missing body', {}],
      ['extra field', { body: 'hello', priority: 'urgent' }],
      ['attachments not an array', { body: 'hello', attachments: { documentId: 'x' } }],
      ['attachment id not a uuid', { body: 'hello', attachments: [{ documentId: 'x' }] }],
      ['body of 20001 chars', { body: 'b'.repeat(20001) }],
      ['body as a number', { body: 42 }],
      ['body as null', { body: null }],
    ];
    for (const [label, body] of cases) {
      assertProblem(t, await call('POST', url, staff, body), 400, 'validation_failed', `staff: ${label}`);
      assertProblem(t, await call('POST', url, patron, body), 400, 'validation_failed', `patron: ${label}`);
    }
    const extra = await call('POST', url, staff, { body: 'hello', priority: 'urgent' });
    t.match((extra.json() as { errors?: { path: string }[] }).errors?.[0]?.path, /priority/, 'errors[0].path names the extra field');
    assertProblem(t, await call('POST', url, staff, '{bad', { 'content-type': 'application/json' }), 400, 'validation_failed', 'malformed JSON');
    assertProblem(t, await call('POST', '/v1/threads/not-a-uuid/messages', staff, { body: 'hi' }), 400, 'validation_failed', 'thread not-a-uuid');
    assertProblem(t, await call('POST', `/v1/threads/${randomUUID()}/messages`, staff, { body: 'hi' }), 404, 'not_found', 'random thread');
    assertProblem(
      t,
      await call('POST', url, staff, { body: 'hi' }, { 'idempotency-key': 'bad key' }),
      400,
      'validation_failed',
      'Idempotency-Key with a space',
    );
    t.equal((await messagesOf(open.id)).length, 1, 'still only the first message');
  });

  await t.test('closed thread: nobody writes', async (t) => {
    const closed = await newThread(true, 'to close');
    const patch = await call('PATCH', `/v1/threads/${closed.id}`, staff, { state: 'closed' });
    t.equal(patch.statusCode, 200, 'closed');
    t.equal((patch.json() as { state: string }).state, 'closed');
    const url = `/v1/threads/${closed.id}/messages`;
    assertProblem(t, await call('POST', url, staff, { body: 'staff writes' }), 403, 'thread_closed', 'staff on closed');
    assertProblem(t, await call('POST', url, h.admin(), { body: 'admin writes' }), 403, 'thread_closed', 'admin on closed');
    assertProblem(t, await call('POST', url, patron, { body: 'patron writes' }), 403, 'thread_closed', 'patron on closed');
    t.equal((await messagesOf(closed.id)).length, 1, 'message count unchanged');
  });

  await t.test('patron may not reply when replies are not allowed', async (t) => {
    const url = `/v1/threads/${noReply.id}/messages`;
    assertProblem(t, await call('POST', url, patron, { body: 'may I?' }), 403, 'reply_not_allowed', 'patron, replyAllowed false');
    t.equal((await messagesOf(noReply.id)).length, 1, 'message count unchanged');
  });

  await t.test('POST /read validation', async (t) => {
    const url = `/v1/threads/${open.id}/read`;
    assertProblem(t, await call('POST', url, patron, { upTo: 'not-a-uuid' }), 400, 'validation_failed', 'upTo not a uuid');
    assertProblem(t, await call('POST', url, patron, {}), 400, 'validation_failed', 'missing upTo');
    assertProblem(t, await call('POST', url, patron, { upTo: open.firstMessageId, all: true }), 400, 'validation_failed', 'extra field');
    assertProblem(
      t,
      await call('POST', url, patron, { upTo: noReply.firstMessageId }),
      422,
      'message_not_in_thread',
      'message of another thread',
    );
    assertProblem(t, await call('POST', url, patron, { upTo: randomUUID() }), 422, 'message_not_in_thread', 'random uuid');
    assertProblem(t, await call('POST', '/v1/threads/not-a-uuid/read', patron, { upTo: randomUUID() }), 400, 'validation_failed', 'thread not-a-uuid');
    const msgs = await messagesOf(open.id);
    t.same(
      msgs.map((m) => m.readAt),
      [null],
      'nothing was marked read',
    );
    const other = await messagesOf(noReply.id);
    t.same(
      other.map((m) => m.readAt),
      [null],
      'the other thread was not marked read',
    );
  });

  await t.test('GET messages query validation', async (t) => {
    const url = `/v1/threads/${open.id}/messages`;
    for (const q of ['limit=500', 'limit=0', 'limit=abc', 'foo=1']) {
      assertProblem(t, await call('GET', `${url}?${q}`, staff), 400, 'validation_failed', `?${q}`);
    }
    assertProblem(t, await call('GET', `${url}?cursor=garbage`, staff), 400, 'invalid_cursor', 'cursor=garbage');
    assertProblem(t, await call('GET', `${url}?cursor=${cursorOf(['a', 'b'])}`, staff), 400, 'invalid_cursor', 'cursor of two strings');
    assertProblem(t, await call('GET', `${url}?cursor=${cursorOf([1])}`, staff), 400, 'invalid_cursor', 'cursor [1]');
    assertProblem(t, await call('GET', '/v1/threads/not-a-uuid/messages', staff), 400, 'validation_failed', 'thread not-a-uuid');
  });

  await t.test('a message cursor of the right shape but not a uuid is a 400, not a 5xx', async (t) => {
    const url = `/v1/threads/${open.id}/messages`;
    const res = await call('GET', `${url}?cursor=${cursorOf(['x'])}`, staff);
    t.ok(res.statusCode < 500, `cursor ["x"] is not a 5xx (got ${res.statusCode})`);
    assertProblem(t, res, 400, 'invalid_cursor', 'cursor ["x"]');
  });

  await t.test('idempotent replay of POST messages', async (t) => {
    const thread = await newThread(true, 'idempotent');
    const url = `/v1/threads/${thread.id}/messages`;
    const headers = { 'idempotency-key': `msg-${randomUUID()}` };
    const first = await call('POST', url, patron, { body: 'My reply' }, headers);
    t.equal(first.statusCode, 201, 'first is 201');
    const second = await call('POST', url, patron, { body: 'My reply' }, headers);
    t.equal(second.statusCode, 201, 'second is 201');
    t.equal(second.headers['idempotent-replayed'], 'true', 'second is marked as a replay');
    t.equal((second.json() as MessageView).id, (first.json() as MessageView).id, 'same message id');
    t.equal((await messagesOf(thread.id)).length, 2, 'first + one reply, not 3');
    const reused = await call('POST', url, patron, { body: 'A different reply' }, headers);
    assertProblem(t, reused, 422, 'idempotency_key_reused', 'same key, different body');
    t.equal((await messagesOf(thread.id)).length, 2, 'still 2 messages');
    const staffSame = await call('POST', url, staff, { body: 'Staff message' }, { 'idempotency-key': `s-${randomUUID()}` });
    t.equal(staffSame.statusCode, 201, 'a fresh key sends a new message');
    t.equal((await messagesOf(thread.id)).length, 3, 'now 3 messages');
  });

  await t.test('read receipts', async (t) => {
    const thread = await newThread(true, 'receipts');
    const readUrl = `/v1/threads/${thread.id}/read`;
    const m1 = thread.firstMessageId;

    const staffRead = await call('POST', readUrl, staff, { upTo: m1 });
    t.equal(staffRead.statusCode, 200, 'staff read is 200');
    t.same(staffRead.json() as Receipt, { threadId: thread.id, readAt: null, messageIds: [] }, 'staff read marked nothing');
    t.equal((await messagesOf(thread.id))[0]?.readAt, null, 'staff message still unread');

    const reply = await call('POST', `/v1/threads/${thread.id}/messages`, patron, { body: 'Thanks' });
    t.equal(reply.statusCode, 201, 'patron replied');
    const m2 = (reply.json() as MessageView).id;
    const staffRead2 = await call('POST', readUrl, staff, { upTo: m2 });
    t.equal(staffRead2.statusCode, 200);
    t.same((staffRead2.json() as Receipt).messageIds, [m2], 'staff read marks only the patron message');
    let msgs = await messagesOf(thread.id);
    t.equal(msgs.find((m) => m.id === m1)?.readAt, null, 'staff message still unread after a staff read');
    t.type(msgs.find((m) => m.id === m2)?.readAt, 'string', 'patron message read by staff');

    const patronRead = await call('POST', readUrl, patron, { upTo: m1 });
    t.equal(patronRead.statusCode, 200, 'patron read is 200');
    const receipt = patronRead.json() as Receipt;
    t.same(receipt.messageIds, [m1], 'patron read marked the staff message');
    t.type(receipt.readAt, 'string', 'receipt has readAt');
    msgs = await messagesOf(thread.id);
    const readAt = msgs.find((m) => m.id === m1)?.readAt;
    t.type(readAt, 'string', 'staff message now has readAt');
    t.equal(readAt, receipt.readAt, 'readAt matches the receipt');

    await new Promise((r) => setTimeout(r, 5));
    const again = await call('POST', readUrl, patron, { upTo: m2 });
    t.equal(again.statusCode, 200, 'second patron read is 200');
    t.same((again.json() as Receipt).messageIds, [], 'second read marked nothing');
    t.equal((again.json() as Receipt).readAt, null, 'second read has no readAt');
    const again2 = await call('POST', readUrl, patron, { upTo: m1 });
    t.same((again2.json() as Receipt).messageIds, [], 'reading the same message again marks nothing');
    msgs = await messagesOf(thread.id);
    t.equal(msgs.find((m) => m.id === m1)?.readAt, readAt, 'readAt did not move');
  });

  t.same(
    seen.filter((s) => s.status >= 500),
    [],
    'no answer was a 5xx',
  );
});
