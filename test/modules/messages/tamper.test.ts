/**
 * Tamper tests on stored ciphertext: a changed or moved ciphertext must fail loudly (a
 * generic 500 and an audit event), never decrypt to wrong plaintext; and a rotated ring
 * (v2,v1) must still read rows written under v1.
 */
import t, { type Test } from 'tap';
import { sql } from 'drizzle-orm';
import { build, newKey, newOrgId, openTestDatabase, type Harness } from '../../fixtures/build.js';
import { rowsOf } from '../../../src/db/util.js';

async function story(h: Harness, customerId = 'c-1') {
  await h.call('PUT', `/v1/customers/${customerId}`, h.integration(), { displayName: 'Ada Example', phone: '+1 555 0100' });
  const opened = await h.call('POST', '/v1/threads', h.staff(), {
    record: { kind: 'customer', id: customerId },
    subject: 'Billing question',
    body: 'first message',
    replyAllowed: true,
  });
  const { thread, message } = opened.json();
  const second = await h.call('POST', `/v1/threads/${thread.id}/messages`, h.staff(), { body: 'second message' });
  return { threadId: thread.id as string, firstId: message.id as string, secondId: second.json().id as string };
}

function assertGeneric500(t: Test, res: { statusCode: number; headers: Record<string, unknown>; json(): Record<string, unknown>; body: string }, leaked: string[]) {
  t.equal(res.statusCode, 500);
  t.match(res.headers['content-type'], /application\/problem\+json/);
  t.same(Object.keys(res.json()).sort(), ['code', 'detail', 'instance', 'status', 'title', 'type']);
  t.equal(res.json().detail, 'An unexpected error occurred. Quote the instance id when you contact support.');
  t.equal(res.json().code, 'internal_error');
  for (const text of leaked) t.notOk(res.body.includes(text), `the 500 body does not contain "${text}"`);
  t.notOk(/integrity|decrypt|cipher|stack/i.test(res.body), 'the 500 says nothing internal');
}

t.test('a flipped byte in a message body fails the read with a generic 500 and an audit event', async (t) => {
  const h = await build(t, { expectServerErrors: true });
  const { threadId, secondId } = await story(h);
  const { db } = h.app.database;
  await db.execute(sql`update messages set body = set_byte(body, 20, get_byte(body, 20) # 1) where id = ${secondId}`);

  const res = await h.call('GET', `/v1/threads/${threadId}/messages`, h.staff());
  assertGeneric500(t, res, ['first message', 'second message']);

  const audit = await h.call('GET', '/v1/audit-events?action=integrity.failed', h.admin());
  t.equal(audit.json().items.length, 1, 'one integrity.failed event');
  t.match(audit.json().items[0], { outcome: 'error', threadId, messageId: secondId, actor: { kind: 'staff' } });
  t.equal((await h.call('GET', '/v1/audit-events/verify', h.admin())).json().valid, true);
});

t.test('a ciphertext copied onto another message, or another thread, fails to decrypt', async (t) => {
  const h = await build(t, { expectServerErrors: true });
  const a = await story(h, 'c-a');
  const b = await story(h, 'c-b');
  const { db } = h.app.database;
  // Same thread: the first message's body pasted over the second's.
  await db.execute(sql`update messages set body = (select body from messages where id = ${a.firstId}) where id = ${a.secondId}`);
  assertGeneric500(t, await h.call('GET', `/v1/threads/${a.threadId}/messages`, h.staff()), ['first message']);
  // Another thread: b's body pasted into a message of b from a (different data key and AAD).
  await db.execute(sql`update messages set body = (select body from messages where id = ${a.firstId}) where id = ${b.secondId}`);
  assertGeneric500(t, await h.call('GET', `/v1/threads/${b.threadId}/messages`, h.staff()), ['first message']);
  // A thread subject moved to another thread.
  await db.execute(sql`update threads set subject = (select subject from threads where id = ${a.threadId}) where id = ${b.threadId}`);
  assertGeneric500(t, await h.call('GET', `/v1/threads/${b.threadId}`, h.staff()), ['Billing question']);
});

t.test('tampered record PHI and a tampered wrapped key fail the same way', async (t) => {
  const h = await build(t, { expectServerErrors: true });
  const { threadId } = await story(h);
  const { db } = h.app.database;
  await db.execute(sql`update records set phone = set_byte(phone, 5, get_byte(phone, 5) # 128) where org_id = ${h.orgId}`);
  assertGeneric500(t, await h.call('GET', '/v1/customers/c-1', h.staff()), ['Ada Example', '555 0100']);
  await db.execute(sql`update threads set wrapped_key = set_byte(wrapped_key, 14, get_byte(wrapped_key, 14) # 1) where id = ${threadId}`);
  assertGeneric500(t, await h.call('GET', `/v1/threads/${threadId}`, h.staff()), ['Billing question']);
  const audit = await h.call('GET', '/v1/audit-events?action=integrity.failed', h.admin());
  t.same(
    audit.json().items.map((e: { record: unknown; threadId: string | null }) => [e.record, e.threadId]),
    [
      [{ kind: 'customer', id: 'c-1' }, null],
      [null, threadId],
    ],
  );
});

t.test('a v2,v1 ring reads rows written under v1 and writes new rows under v2', async (t) => {
  const database = await openTestDatabase(t);
  const orgId = newOrgId();
  const v1 = newKey();
  const before = await build(t, { database, orgId, encryptionKeys: `v1:${v1}` });
  const old = await story(before);
  await before.app.close();

  const after = await build(t, { database, orgId, encryptionKeys: `v2:${newKey()},v1:${v1}` });
  const record = await after.call('GET', '/v1/customers/c-1', after.staff());
  t.equal(record.statusCode, 200);
  t.equal(record.json().displayName, 'Ada Example');
  const messages = await after.call('GET', `/v1/threads/${old.threadId}/messages`, after.staff());
  t.same(messages.json().items.map((m: { body: string }) => m.body), ['first message', 'second message']);
  const fresh = await story(after, 'c-2');
  const versions = rowsOf<{ id: string; key_version: number }>(
    await database.db.execute(sql`select id, key_version from threads where org_id = ${orgId} order by id`),
  );
  t.same(versions.map((v) => [v.id, v.key_version]), [
    [old.threadId, 1],
    [fresh.threadId, 2],
  ]);
  const reply = await after.call('POST', `/v1/threads/${old.threadId}/messages`, after.staff(), { body: 'after rotation' });
  t.equal(reply.statusCode, 201, 'an old thread still takes new messages');

  await t.rejects(
    build(t, { database, orgId, encryptionKeys: `v3:${newKey()}` }),
    /ENCRYPTION_KEYS lacks v1, v2/,
    'a ring without the versions stored rows use refuses to start, naming them',
  );
});
