/**
 * The whole external-access story against a real SMTP server: grant with both checks, the
 * mail arrives with the token in the fragment, a wrong check fails, the right ones open a
 * session; the recipient reads, marks read, replies and downloads; staff see it; revoke ends
 * the session at once.
 */
import t from 'tap';
import { build } from '../../fixtures/build.js';
import { fileUpload } from '../../fixtures/multipart.js';
import { startSmtp, waitFor } from '../../fixtures/smtp.js';
import * as f from '../../fixtures/files.js';

t.test('grant, mail, verify, read, reply, download, revoke', async (t) => {
  const smtp = await startSmtp();
  t.teardown(() => smtp.stop());
  const h = await build(t, { env: { SMTP_URL: smtp.url, PORTAL_URL: 'https://portal.example.org/m' }, mailPollMs: 100 });
  const staff = h.staff();
  await h.call('PATCH', '/v1/settings', h.admin(), { displayName: 'Riverside Clinic' });
  await h.call('PUT', '/v1/customers/c-1', h.integration(), { displayName: 'Gina Guarantor', dateOfBirth: '1975-03-09', phone: '+1 (555) 201-7788' });
  const pdf = f.pdf();
  const up = fileUpload('statement.pdf', pdf);
  const doc = (
    await h.app.inject({ method: 'POST', url: '/v1/customers/c-1/documents', headers: { ...up.headers, authorization: `Bearer ${staff}` }, payload: up.payload })
  ).json();
  const opened = await h.call('POST', '/v1/threads', staff, {
    record: { kind: 'customer', id: 'c-1' },
    subject: 'Balance due',
    body: 'Please review the attached statement.',
    replyAllowed: true,
    attachments: [{ documentId: doc.id }],
  });
  const thread = opened.json().thread;
  const firstMessage = opened.json().message;

  // 1. Staff grant a link with both checks.
  const grant = await h.call('POST', `/v1/threads/${thread.id}/access-links`, staff, {
    email: 'guarantor@example.net',
    expiresIn: '7d',
    verify: { dateOfBirth: true, phone: true },
  });
  t.equal(grant.statusCode, 201);
  const link = grant.json();
  t.match(link, { email: 'guarantor@example.net', state: 'active', verify: { dateOfBirth: true, phone: true }, failureCount: 0 });
  t.notOk(/token/i.test(JSON.stringify(link)), 'the answer carries no token');

  // 2. The mail arrives; the token comes from its fragment.
  await waitFor(() => smtp.received.some((m) => m.to.includes('guarantor@example.net')), 10_000, 'the access mail');
  const mail = smtp.received.find((m) => m.to.includes('guarantor@example.net'))!;
  t.ok(mail.token, 'the mail holds a token');
  t.match(mail.raw, /https:\/\/portal\.example\.org\/m#token=/, 'in the fragment of PORTAL_URL');
  t.match(mail.raw, /Subject: You have a secure message/);
  t.match(mail.raw, /Riverside Clinic/);
  // Whole values: short digit runs could occur by chance in the token or the Message-ID.
  for (const phi of ['Balance due', 'Please review', 'Gina', '1975-03-09', '03/09/1975', '201-7788', '5552017788', 'statement.pdf']) t.notOk(mail.raw.includes(phi), `the mail has no ${phi}`);
  const token = mail.token!;

  // 3. A wrong date of birth gets 401.
  const wrong = await h.call('POST', '/v1/external/sessions', undefined, { token, dateOfBirth: '1975-03-10', phone: '555-201-7788' });
  t.equal(wrong.statusCode, 401);
  t.equal(wrong.json().code, 'external_access_denied');

  // 4. Correct checks (other formats) open a session.
  const session = await h.call('POST', '/v1/external/sessions', undefined, { token, dateOfBirth: '03/09/1975', phone: '1-555-201-7788' });
  t.equal(session.statusCode, 201);
  const { sessionToken, thread: seen } = session.json();
  t.equal(seen.id, thread.id);
  t.equal(seen.subject, 'Balance due');
  const cookie = String(session.headers['set-cookie']);
  t.match(cookie, /^__Host-sc_ext=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; Secure; SameSite=Strict$/, 'a host-only, HttpOnly, strict session cookie');

  // 5. Read, mark read, reply, download — with the cookie for some calls and the bearer for others.
  const viaCookie = { cookie: `__Host-sc_ext=${sessionToken}` };
  const threadView = await h.app.inject({ method: 'GET', url: '/v1/external/thread', headers: viaCookie });
  t.equal(threadView.statusCode, 200);
  const list = await h.call('GET', '/v1/external/messages', sessionToken);
  t.equal(list.statusCode, 200);
  t.same(list.json().items.map((m: { body: string }) => m.body), ['Please review the attached statement.']);
  t.equal(list.json().items[0].attachments[0].id, doc.id);
  const read = await h.call('POST', '/v1/external/read', sessionToken, { upTo: firstMessage.id });
  t.same(read.json().messageIds, [firstMessage.id]);
  const reply = await h.call('POST', '/v1/external/messages', sessionToken, { body: 'Paid today, thanks.' });
  t.equal(reply.statusCode, 201);
  t.match(reply.json(), { author: { kind: 'external', id: link.id, name: 'guarantor@example.net' }, readAt: null });
  const download = await h.call('GET', `/v1/external/documents/${doc.id}/content`, sessionToken);
  t.equal(download.statusCode, 200);
  t.ok(download.rawPayload.equals(pdf), 'the attachment downloads byte for byte');

  // 6. Staff see the reply and the read receipt.
  const staffView = (await h.call('GET', `/v1/threads/${thread.id}/messages`, staff)).json().items;
  t.ok(staffView[0].readAt, 'staff see readAt on their message');
  t.match(staffView[1], { body: 'Paid today, thanks.', author: { kind: 'external', name: 'guarantor@example.net' } });
  const staffRead = await h.call('POST', `/v1/threads/${thread.id}/read`, staff, { upTo: staffView[1].id });
  t.same(staffRead.json().messageIds, [staffView[1].id], 'staff mark the external reply read');
  t.ok((await h.call('GET', '/v1/external/messages', sessionToken)).json().items[1].readAt, 'the recipient sees its reply read');

  // 7. Revoke: the open session fails at once, and the token opens nothing.
  const revoke = await h.call('DELETE', `/v1/access-links/${link.id}`, staff);
  t.equal(revoke.json().state, 'revoked');
  t.equal((await h.call('GET', '/v1/external/thread', sessionToken)).statusCode, 401, 'the session ended on its next request');
  const again = await h.call('POST', '/v1/external/sessions', undefined, { token, dateOfBirth: '1975-03-09', phone: '5552017788' });
  t.equal(again.statusCode, 401);
  t.same(again.json(), wrong.json(), 'a revoked link answers exactly like a wrong check');

  const events = (await h.call('GET', `/v1/audit-events?threadId=${thread.id}&limit=200`, h.admin())).json().items;
  const actions = events.map((e: { action: string; outcome: string }) => `${e.action}:${e.outcome}`);
  for (const expected of [
    'access_link.granted:success',
    'verification.failed:failure',
    'verification.succeeded:success',
    'access_link.opened:success',
    'message.sent:success',
    'access_link.revoked:success',
    'verification.failed:denied',
  ]) {
    t.ok(actions.includes(expected), `audited: ${expected}`);
  }
});
