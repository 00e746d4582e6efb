/**
 * Regression (found by the contract fuzz suite): PATCH /v1/settings took any displayName the
 * schema let through. NUL answered 500 (PostgreSQL refuses it in text); an unpaired surrogate
 * was stored as U+FFFD while its audit event (reason "displayName=…") had been hashed over the
 * original string, so GET /v1/audit-events/verify reported a hash_mismatch forever after.
 * Both are now a 400 that writes nothing; any well-formed text, emoji included, still works.
 */
import t from 'tap';
import { build } from '../../fixtures/build.js';
import { assertProblem } from '../../fixtures/problems.js';

t.test('displayName: unstorable text is refused, the audit chain stays valid', async (t) => {
  const h = await build(t);
  const admin = h.admin();
  const before = (await h.call('GET', '/v1/settings', admin)).json();

  for (const [label, displayName] of [
    ['NUL', 'Riverside\u0000Clinic'],
    ['a control character', 'Riverside\u0007Clinic'],
    ['an unpaired high surrogate', 'Riverside \uD800 Clinic'],
    ['an unpaired low surrogate', 'Riverside \uDC00 Clinic'],
    ['a surrogate pair cut at the end', 'Riverside 😀'.slice(0, -1)],
  ] as const) {
    const res = await h.call('PATCH', '/v1/settings', admin, { displayName });
    assertProblem(t, res, 400, 'validation_failed', label);
    t.match(res.json().detail, /displayName/, `${label}: the detail names the field`);
  }
  t.same((await h.call('GET', '/v1/settings', admin)).json(), before, 'nothing was changed');

  for (const displayName of ['Clínica Río 😀🩺', 'עמותת שלום', 'Riverside Clinic']) {
    const res = await h.call('PATCH', '/v1/settings', admin, { displayName });
    t.equal(res.statusCode, 200, `${displayName}: accepted`);
    t.equal((await h.call('GET', '/v1/settings', admin)).json().displayName, displayName, `${displayName}: read back unchanged`);
  }
  const verify = (await h.call('GET', '/v1/audit-events/verify', admin)).json();
  t.equal(verify.valid, true, 'the audit chain verifies');
  t.equal(verify.checked, 3, 'three settings.updated events were chained');
});
