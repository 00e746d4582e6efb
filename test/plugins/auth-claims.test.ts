/**
 * Regression (found while chasing an audit-chain break from the contract fuzz suite): token
 * claims that end up in audit events (sub, org, name) may not hold unpaired surrogates. Stored
 * as U+FFFD, they no longer matched the event hash computed over the original string, and the
 * organization's chain reported a hash_mismatch from then on. A sub or org like that is now an
 * invalid claim (401); a name like that is dropped, as any malformed name already was.
 */
import t from 'tap';
import { build } from '../fixtures/build.js';
import { assertProblem } from '../fixtures/problems.js';

t.test('claims with unpaired surrogates never reach the audit chain', async (t) => {
  const h = await build(t);
  const record = { displayName: 'Pat' };
  const bad = [
    ['sub', h.token({ sub: 'staff-\uD800', role: 'staff', name: 'S' })],
    ['org', h.token({ sub: 'staff-1', role: 'staff', org: `${h.orgId}\uDC00` })],
  ] as const;
  for (const [claim, token] of bad) {
    assertProblem(t, await h.call('PUT', '/v1/customers/c-1', token, record), 401, 'unauthorized', `a ${claim} with an unpaired surrogate`);
  }
  const oddName = h.token({ sub: 'staff-2', role: 'staff', name: 'Ann \uD83D' });
  t.equal((await h.call('PUT', '/v1/customers/c-1', oddName, record)).statusCode, 201, 'a malformed name is dropped, the caller still served');
  const emoji = h.token({ sub: 'staff-😀', role: 'staff', name: 'Zoë 😀' });
  t.equal((await h.call('PUT', '/v1/customers/c-1', emoji, record)).statusCode, 200, 'well-formed non-ASCII claims are fine');

  const events = (await h.call('GET', '/v1/audit-events?limit=50', h.admin())).json().items as { action: string; actor: { id: string; name: string | null } }[];
  const viewed = events.filter((e) => e.action === 'record.upserted');
  t.same(
    viewed.map((e) => e.actor),
    [
      { kind: 'staff', id: 'staff-2', name: null },
      { kind: 'staff', id: 'staff-😀', name: 'Zoë 😀' },
    ],
    'the events carry the claims as given, or no name',
  );
  t.equal((await h.call('GET', '/v1/audit-events/verify', h.admin())).json().valid, true, 'the audit chain verifies');
});
