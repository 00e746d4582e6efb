/**
 * Inputs that once reached SQL and failed there (500) must be 400s, and an internal error's
 * log line must not carry the driver's message (it can quote PHI parameters).
 */
import t from 'tap';
import { build } from '../fixtures/build.js';
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
