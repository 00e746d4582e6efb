/**
 * Regression (found by the contract fuzz suite): ids in the path are UUIDs and may come in
 * upper case (the contract allows it). Services put the id from the path into audit events;
 * the event hash covered the uppercase text while PostgreSQL stored the uuid in lower case,
 * so GET /v1/audit-events/verify reported a hash_mismatch from then on (a DELETE of a thread
 * before its retention date was enough). Path ids are now canonicalized to lower case.
 */
import t from 'tap';
import { build } from '../../fixtures/build.js';
import { fileUpload } from '../../fixtures/multipart.js';
import * as f from '../../fixtures/files.js';

t.test('uppercase path ids: same answers, audit chain intact, events carry the stored ids', async (t) => {
  const h = await build(t);
  const staff = h.staff();
  await h.call('PUT', '/v1/customers/c-1', h.integration(), { displayName: 'Ada' });
  const up = fileUpload('a.pdf', f.pdf());
  const doc = (await h.app.inject({ method: 'POST', url: '/v1/customers/c-1/documents', headers: { ...up.headers, authorization: `Bearer ${staff}` }, payload: up.payload })).json();
  const opened = (await h.call('POST', '/v1/threads', staff, { record: { kind: 'customer', id: 'c-1' }, subject: 'S', body: 'B', replyAllowed: true })).json();
  const thread = opened.thread.id as string;
  const message = opened.message.id as string;
  const link = (await h.call('POST', `/v1/threads/${thread}/access-links`, staff, { email: 'x@example.net', expiresIn: '3d', verify: { dateOfBirth: false, phone: false } })).json();
  const T = thread.toUpperCase();
  const D = (doc.id as string).toUpperCase();

  const calls: [string, string, unknown, number][] = [
    ['GET', `/v1/threads/${T}`, undefined, 200],
    ['PATCH', `/v1/threads/${T}`, { replyAllowed: false }, 200],
    ['DELETE', `/v1/threads/${T}`, undefined, 409],
    ['GET', `/v1/threads/${T}/messages`, undefined, 200],
    ['POST', `/v1/threads/${T}/messages`, { body: 'Again' }, 201],
    ['POST', `/v1/threads/${T}/read`, { upTo: message.toUpperCase() }, 200],
    ['GET', `/v1/threads/${T}/access-links`, undefined, 200],
    ['GET', `/v1/documents/${D}`, undefined, 200],
    ['GET', `/v1/documents/${D}/content`, undefined, 200],
    ['DELETE', `/v1/documents/${D}`, undefined, 409],
    ['DELETE', `/v1/access-links/${(link.id as string).toUpperCase()}`, undefined, 200],
  ];
  for (const [method, url, body, status] of calls) {
    const res = await h.call(method as 'GET', url, staff, body);
    t.equal(res.statusCode, status, `${method} ${url.replace(/[0-9A-F-]{36}/g, '{ID}')}: ${status}`);
  }
  const patron = h.patron('customer:c-1');
  t.equal((await h.call('GET', `/v1/threads/${T}`, patron)).statusCode, 200, 'a patron reaches its own thread by an uppercase id');

  const verify = (await h.call('GET', '/v1/audit-events/verify', h.admin())).json();
  t.equal(verify.valid, true, 'the audit chain verifies');
  const events = (await h.call('GET', '/v1/audit-events?limit=200', h.admin())).json().items as { threadId: string | null; documentId: string | null; linkId: string | null }[];
  const ids = events.flatMap((e) => [e.threadId, e.documentId, e.linkId]).filter((v): v is string => v !== null);
  t.ok(ids.includes(thread) && ids.includes(doc.id) && ids.includes(link.id), 'the events name the thread, the document and the link');
  t.same(ids.filter((id) => id !== id.toLowerCase()), [], 'every id in the trail is the stored, lowercase one');
});
