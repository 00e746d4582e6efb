/**
 * The acceptance story of the foundation issue, over HTTP: records, a staff-opened thread,
 * the patron's read and reply rules, read receipts, tenancy, and then what it left behind:
 * the exact audit trail, a verifying chain, no PHI in any table, and no PHI in the logs.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { build, newOrgId } from './fixtures/build.js';
import { dumpAllTables, findMarkers } from './fixtures/raw-tables.js';

const tag = randomBytes(4).toString('hex');
const PHI = {
  displayName: `Zelda Quuxworth ${tag}`,
  email: `zelda.${tag}@example.org`,
  dateOfBirth: '1971-04-29',
  phone: '+1 (555) 014-2398',
};
const SUBJECT = `Chemo schedule ${tag}`;
const BODY = `Your infusion moves to Tuesday ${tag}`;
const REPLY = `Thanks, Tuesday works ${tag}`;

t.test('the foundation story', async (t) => {
  const h = await build(t, { captureLogs: true });
  const staff = h.staff();
  const patron = h.patron('customer:cust-1');
  const customer = '/v1/customers/cust-1';

  // 1. An integration upserts a customer.
  const upsert = await h.call('PUT', customer, h.integration(), PHI);
  t.equal(upsert.statusCode, 201, 'integration creates the customer');
  t.match(upsert.json(), { kind: 'customer', id: 'cust-1', ...PHI });

  // 2. A patron cannot open a thread.
  const patronOpen = await h.call('POST', '/v1/threads', patron, {
    record: { kind: 'customer', id: 'cust-1' },
    subject: 'I want to talk',
    body: 'hello',
    replyAllowed: true,
  });
  t.equal(patronOpen.statusCode, 403, 'patron POST /v1/threads is 403');
  t.equal(patronOpen.json().code, 'forbidden');

  // 3. Staff opens a thread with replyAllowed false.
  const opened = await h.call('POST', '/v1/threads', staff, {
    record: { kind: 'customer', id: 'cust-1' },
    subject: SUBJECT,
    body: BODY,
    replyAllowed: false,
  });
  t.equal(opened.statusCode, 201);
  const { thread, message: first } = opened.json();
  t.match(thread, { subject: SUBJECT, replyAllowed: false, state: 'open', record: { kind: 'customer', id: 'cust-1' }, unreadCount: 0 });
  t.match(first, { body: BODY, author: { kind: 'staff', id: 'staff-alice' }, readAt: null });

  // 4. It is on the customer's Secure Messages tab and in the patron's own list.
  const tab = await h.call('GET', `${customer}/threads`, staff);
  t.equal(tab.statusCode, 200);
  t.same(tab.json().items.map((i: { id: string }) => i.id), [thread.id]);
  const mine = await h.call('GET', '/v1/me/threads', patron);
  t.equal(mine.statusCode, 200);
  t.same(mine.json().items.map((i: { id: string }) => i.id), [thread.id]);
  t.equal(mine.json().items[0].unreadCount, 1, 'the patron has one unread message');

  // 5. The patron reads it and marks it read; staff sees readAt.
  const patronView = await h.call('GET', `/v1/threads/${thread.id}`, patron);
  t.equal(patronView.statusCode, 200);
  t.equal(patronView.json().subject, SUBJECT);
  const patronMessages = await h.call('GET', `/v1/threads/${thread.id}/messages`, patron);
  t.equal(patronMessages.statusCode, 200);
  t.same(patronMessages.json().items.map((m: { body: string }) => m.body), [BODY]);
  const read = await h.call('POST', `/v1/threads/${thread.id}/read`, patron, { upTo: first.id });
  t.equal(read.statusCode, 200);
  t.same(read.json().messageIds, [first.id]);
  const staffMessages = await h.call('GET', `/v1/threads/${thread.id}/messages`, staff);
  const readAt = staffMessages.json().items[0].readAt;
  t.equal(readAt, read.json().readAt, 'staff sees the readAt the patron set');
  t.ok(readAt);

  // 6. The patron's reply is refused while reply is not allowed.
  const refused = await h.call('POST', `/v1/threads/${thread.id}/messages`, patron, { body: REPLY });
  t.equal(refused.statusCode, 403);
  t.equal(refused.json().code, 'reply_not_allowed');

  // 7. Staff allows replies; the patron's reply is accepted.
  const patch = await h.call('PATCH', `/v1/threads/${thread.id}`, staff, { replyAllowed: true });
  t.equal(patch.statusCode, 200);
  t.equal(patch.json().replyAllowed, true);
  const reply = await h.call('POST', `/v1/threads/${thread.id}/messages`, patron, { body: REPLY });
  t.equal(reply.statusCode, 201);
  t.match(reply.json(), { body: REPLY, author: { kind: 'patron' }, readAt: null });
  const staffTab = await h.call('GET', `${customer}/threads`, staff);
  t.equal(staffTab.json().items[0].unreadCount, 1, "staff has the patron's reply unread");

  // 8. Another organization's staff gets 404 on every one of those objects.
  const other = h.token({ sub: 'mallory', role: 'staff', name: 'Mallory', org: newOrgId() });
  const otherAdmin = h.token({ sub: 'mallory-admin', role: 'admin', name: 'Mallory', org: newOrgId() });
  for (const [method, url, body] of [
    ['GET', customer],
    ['GET', `${customer}/threads`],
    ['GET', `/v1/threads/${thread.id}`],
    ['PATCH', `/v1/threads/${thread.id}`, { state: 'closed' }],
    ['GET', `/v1/threads/${thread.id}/messages`],
    ['POST', `/v1/threads/${thread.id}/messages`, { body: 'intrusion' }],
    ['POST', `/v1/threads/${thread.id}/read`, { upTo: first.id }],
  ] as const) {
    for (const token of [other, otherAdmin]) {
      const res = await h.call(method, url, token, body);
      t.equal(res.statusCode, 404, `other org: ${method} ${url} is 404`);
      t.equal(res.json().code, 'not_found');
    }
  }

  t.test('the audit trail holds exactly the story, in order, and verifies', async (t) => {
    const res = await h.call('GET', `/v1/audit-events?limit=200`, h.admin());
    t.equal(res.statusCode, 200);
    const events = res.json().items as { seq: number; action: string; outcome: string; actor: { kind: string; id: string; name: string | null }; threadId: string | null; messageId: string | null; record: unknown }[];
    const summary = events.map((e) => [e.action, e.outcome, e.actor.kind, e.actor.id]);
    t.same(summary, [
      ['record.upserted', 'success', 'integration', 'ehr-sync'],
      ['thread.created', 'denied', 'patron', 'patron-customer:cust-1'],
      ['thread.created', 'success', 'staff', 'staff-alice'],
      ['message.sent', 'success', 'staff', 'staff-alice'],
      ['thread.listed', 'success', 'staff', 'staff-alice'],
      ['thread.listed', 'success', 'patron', 'patron-customer:cust-1'],
      ['thread.opened', 'success', 'patron', 'patron-customer:cust-1'],
      ['message.listed', 'success', 'patron', 'patron-customer:cust-1'],
      ['message.read', 'success', 'patron', 'patron-customer:cust-1'],
      ['message.listed', 'success', 'staff', 'staff-alice'],
      ['message.sent', 'denied', 'patron', 'patron-customer:cust-1'],
      ['thread.updated', 'success', 'staff', 'staff-alice'],
      ['message.sent', 'success', 'patron', 'patron-customer:cust-1'],
      ['thread.listed', 'success', 'staff', 'staff-alice'],
      // Step 8: each probe of this org's thread by another org is a denied event in this
      // org's trail (the prober only saw 404s).
      ...['thread.opened', 'thread.updated', 'message.listed', 'message.sent', 'message.read'].flatMap((action) => [
        [action, 'denied', 'staff', 'mallory'],
        [action, 'denied', 'admin', 'mallory-admin'],
      ]),
    ]);
    t.same(events.map((e) => e.seq), events.map((_, i) => i + 1), 'seq runs 1..n with no gap');
    t.equal(events[2]!.threadId, thread.id);
    t.equal(events[3]!.messageId, first.id);
    t.equal(events[8]!.messageId, first.id, 'message.read names the message');
    t.equal(events[10]!.threadId, thread.id, 'the denied reply names the thread');
    t.ok(events.every((e) => e.actor.kind !== 'patron' || e.actor.name === null), 'no patron name (PHI) in the audit trail');

    const verify = await h.call('GET', '/v1/audit-events/verify', h.admin());
    t.same(verify.json(), { valid: true, checked: events.length, firstBreak: null, head: { seq: events.length, hash: (events.at(-1) as unknown as { hash: string }).hash } });
  });

  t.test('the database refuses UPDATE, DELETE and TRUNCATE on audit_events', async (t) => {
    const { db } = h.app.database;
    await t.rejects(db.execute(sql`update audit_events set action = 'edited' where org_id = ${h.orgId}`));
    await t.rejects(db.execute(sql`delete from audit_events where org_id = ${h.orgId}`));
    await t.rejects(db.execute(sql`truncate audit_events`));
    const verify = await h.call('GET', '/v1/audit-events/verify', h.admin());
    t.equal(verify.json().valid, true, 'the chain is intact after the refused changes');
  });

  t.test('no table holds the subject, bodies, name, email, date of birth or phone in the clear', async (t) => {
    const dump = await dumpAllTables(h.app.database);
    t.ok((dump.get('messages') ?? []).length >= 2, 'the dump read the messages table');
    const markers = [SUBJECT, BODY, REPLY, PHI.displayName, PHI.email, PHI.dateOfBirth, PHI.phone, '5550142398', 'Zelda'];
    t.same(findMarkers(dump, markers), []);
  });

  t.test('the logs carry no subject, body, PHI or bearer token', async (t) => {
    const text = h.logs.join('');
    t.ok(text.includes('incoming request'), 'requests were logged');
    for (const secret of [SUBJECT, BODY, REPLY, PHI.displayName, PHI.email, PHI.dateOfBirth, PHI.phone, staff, patron]) {
      t.notOk(text.includes(secret), `logs do not contain ${secret.slice(0, 12)}…`);
    }
    t.notOk(/Bearer\s+ey/.test(text), 'no bearer token in the logs');
  });
});
