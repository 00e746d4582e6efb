/**
 * The combined product story across the foundation, documents and external-access issues,
 * then the compliance view of it: the NDJSON audit export for the thread must be exactly this
 * list of actions, actors and outcomes, in order, and the chain must verify.
 */
import t from 'tap';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { build } from './fixtures/build.js';
import { fileUpload } from './fixtures/multipart.js';
import * as f from './fixtures/files.js';

t.test('records → documents → thread → patron → external → revoke → audit export', async (t) => {
  const mailDir = mkdtempSync(path.join(tmpdir(), 'sc-story-mail-'));
  const h = await build(t, { env: { MAIL_DIR: mailDir, EXTERNAL_SESSION_RATE_LIMIT: '1000' } });
  const staff = h.staff();
  const patron = h.patron('customer:c-9');
  await h.call('PUT', '/v1/customers/c-9', h.integration(), { displayName: 'Hal Holder', email: 'hal@example.org', dateOfBirth: '1960-01-31', phone: '555 123 4567' });
  const up = fileUpload('consent.pdf', f.pdf());
  const doc = (
    await h.app.inject({ method: 'POST', url: '/v1/customers/c-9/documents', headers: { ...up.headers, authorization: `Bearer ${staff}` }, payload: up.payload })
  ).json();

  const created = (
    await h.call('POST', '/v1/threads', staff, {
      record: { kind: 'customer', id: 'c-9' },
      subject: 'Consent form',
      body: 'Please sign the attached form.',
      replyAllowed: false,
      attachments: [{ documentId: doc.id }],
    })
  ).json();
  const threadId = created.thread.id as string;

  t.equal((await h.call('GET', `/v1/threads/${threadId}`, patron)).statusCode, 200);
  t.equal((await h.call('GET', `/v1/threads/${threadId}/messages`, patron)).statusCode, 200);
  t.equal((await h.call('POST', `/v1/threads/${threadId}/read`, patron, { upTo: created.message.id })).statusCode, 200);
  t.equal((await h.call('GET', `/v1/documents/${doc.id}/content`, patron)).statusCode, 200, 'the patron downloads the attachment');
  t.equal((await h.call('PATCH', `/v1/threads/${threadId}`, staff, { replyAllowed: true })).statusCode, 200);

  const link = (await h.call('POST', `/v1/threads/${threadId}/access-links`, staff, { email: 'guardian@example.net', expiresIn: '3d', verify: { dateOfBirth: true, phone: false } })).json();
  const second = (await h.call('POST', `/v1/threads/${threadId}/messages`, staff, { body: 'A reminder.' })).json();
  // On the shared PostgreSQL test database the worker also meets other tests' rows (sealed
  // under their keys, so they fail and back off): drain until ours are out.
  for (let i = 0; i < 200 && readdirSync(mailDir).length < 2; i++) await h.app.mail.drainNow();
  const mails = readdirSync(mailDir).map((name) => readFileSync(path.join(mailDir, name), 'utf8').replace(/=\r?\n/g, '').replace(/=3D/g, '='));
  t.equal(mails.length, 2, 'the access mail and one (coalesced) notice to the record holder');
  const token = mails.map((m) => /#token=([A-Za-z0-9_-]{43})/.exec(m)?.[1]).find(Boolean)!;
  t.ok(token);

  t.equal((await h.call('POST', '/v1/external/sessions', undefined, { token, dateOfBirth: '1960-02-01' })).statusCode, 401);
  const session = (await h.call('POST', '/v1/external/sessions', undefined, { token, dateOfBirth: '1960-01-31' })).json().sessionToken as string;
  t.equal((await h.call('GET', '/v1/external/thread', session)).statusCode, 200);
  t.equal((await h.call('GET', '/v1/external/messages', session)).statusCode, 200);
  t.same((await h.call('POST', '/v1/external/read', session, { upTo: second.id })).json().messageIds, [second.id]);
  const reply = (await h.call('POST', '/v1/external/messages', session, { body: 'Signed, thank you.' })).json();
  t.equal((await h.call('GET', `/v1/threads/${threadId}/messages`, staff)).statusCode, 200);
  t.same((await h.call('POST', `/v1/threads/${threadId}/read`, staff, { upTo: reply.id })).json().messageIds, [reply.id]);
  t.equal((await h.call('DELETE', `/v1/access-links/${link.id}`, staff)).statusCode, 200);
  t.equal((await h.call('GET', '/v1/external/thread', session)).statusCode, 401, 'revocation ends the session at once');
  t.equal((await h.call('POST', '/v1/external/sessions', undefined, { token, dateOfBirth: '1960-01-31' })).statusCode, 401);

  const exported = await h.call('GET', `/v1/audit-events/export?threadId=${threadId}`, h.admin());
  t.equal(exported.statusCode, 200);
  const events = exported.body
    .trimEnd()
    .split('\n')
    .map((line) => JSON.parse(line) as { action: string; outcome: string; actor: { kind: string; id: string }; messageId: string | null; linkId: string | null; documentId: string | null });
  t.same(
    events.map((e) => [e.action, e.outcome, e.actor.kind, e.actor.id]),
    [
      ['thread.created', 'success', 'staff', 'staff-alice'],
      ['message.sent', 'success', 'staff', 'staff-alice'],
      ['attachment.attached', 'success', 'staff', 'staff-alice'],
      ['thread.opened', 'success', 'patron', 'patron-customer:c-9'],
      ['message.listed', 'success', 'patron', 'patron-customer:c-9'],
      ['message.read', 'success', 'patron', 'patron-customer:c-9'],
      ['thread.updated', 'success', 'staff', 'staff-alice'],
      ['access_link.granted', 'success', 'staff', 'staff-alice'],
      ['message.sent', 'success', 'staff', 'staff-alice'],
      ['verification.failed', 'failure', 'external', link.id],
      ['verification.succeeded', 'success', 'external', link.id],
      ['access_link.opened', 'success', 'external', link.id],
      ['thread.opened', 'success', 'external', link.id],
      ['message.listed', 'success', 'external', link.id],
      ['message.read', 'success', 'external', link.id],
      ['message.sent', 'success', 'external', link.id],
      ['message.listed', 'success', 'staff', 'staff-alice'],
      ['message.read', 'success', 'staff', 'staff-alice'],
      ['access_link.revoked', 'success', 'staff', 'staff-alice'],
      ['verification.failed', 'denied', 'external', link.id],
    ],
  );
  t.equal(events[2]!.documentId, doc.id, 'the attachment event names the document');
  t.equal(events[15]!.messageId, reply.id, 'the external reply is named');
  t.ok(events.every((e) => e.actor.kind !== 'external' || e.linkId === link.id), 'external events name the link');
  const raw = exported.body;
  // Whole values only: short digit runs can occur by chance inside hashes and ids.
  for (const phi of ['Hal Holder', 'hal@example.org', 'guardian@example.net', '1960-01-31', '555 123 4567', '5551234567', 'Consent form', 'Please sign', 'Signed, thank']) {
    t.notOk(raw.includes(phi), `the export carries no ${phi}`);
  }
  const downloads = (await h.call('GET', `/v1/audit-events?action=document.downloaded`, h.admin())).json().items;
  t.match(downloads, [{ documentId: doc.id, actor: { kind: 'patron' }, record: { kind: 'customer', id: 'c-9' } }], 'the download is audited on the record');
  t.equal((await h.call('GET', '/v1/audit-events/verify', h.admin())).json().valid, true);
});
