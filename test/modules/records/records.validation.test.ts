/**
 * Records: bad input to PUT /v1/{customers,volunteers}/:id is refused with problem+json and
 * nothing is written. Bodies are validated strictly (no coercion, no unknown fields).
 */
import t, { type Test } from 'tap';
import { build, type Harness } from '../../fixtures/build.js';
import { assertProblem } from '../../fixtures/problems.js';

t.test('records PUT validation', async (t) => {
  const h: Harness = await build(t);
  const staff = h.staff();
  const integration = h.integration();
  const seen: number[] = [];
  const call: Harness['call'] = async (...args) => {
    const res = await h.call(...args);
    seen.push(res.statusCode);
    return res;
  };

  const get = (id: string, kind = 'customers') => call('GET', `/v1/${kind}/${id}`, staff);
  /** The record must not exist after a refused create. */
  async function assertAbsent(t: Test, id: string, kind = 'customers') {
    const res = await get(id, kind);
    t.equal(res.statusCode, 404, `${kind}/${id} was not created`);
  }

  const valid = { displayName: 'Jane Doe', email: 'jane@example.org', dateOfBirth: '1980-01-02', phone: '+1 (555) 010-2030' };

  // A refused body: status, code, and the record still does not exist.
  async function refusedCreate(t: Test, label: string, id: string, body: unknown, status = 400, code = 'validation_failed') {
    const res = await call('PUT', `/v1/customers/${id}`, integration, body);
    const problem = assertProblem(t, res, status, code, label);
    await assertAbsent(t, id);
    return problem;
  }

  await t.test('missing displayName', async (t) => {
    const { displayName: _omit, ...rest } = valid;
    await refusedCreate(t, 'missing displayName', 'r-missing-name', rest);
  });

  await t.test('displayName empty and 201 chars', async (t) => {
    await refusedCreate(t, 'empty displayName', 'r-empty-name', { ...valid, displayName: '' });
    await refusedCreate(t, '201-char displayName', 'r-long-name', { ...valid, displayName: 'x'.repeat(201) });
    // The boundary itself is accepted.
    const ok = await call('PUT', '/v1/customers/r-200-name', integration, { ...valid, displayName: 'x'.repeat(200) });
    t.equal(ok.statusCode, 201, '200 chars is accepted');
  });

  await t.test('unknown field names the field', async (t) => {
    const problem = await refusedCreate(t, 'unknown field', 'r-unknown', { ...valid, ssn: '123-45-6789' });
    const errors = problem.errors as { path: string; message: string }[] | undefined;
    t.ok(Array.isArray(errors) && errors.length > 0, 'has errors[]');
    t.match(errors?.[0]?.path, /ssn/, 'errors[0].path names the field');
    t.notMatch(JSON.stringify(problem), /123-45-6789/, 'the submitted value is not echoed');
  });

  await t.test('email not an email', async (t) => {
    await refusedCreate(t, 'bad email', 'r-bad-email', { ...valid, email: 'not-an-email' });
  });

  await t.test('dateOfBirth must be a real, past, ISO date', async (t) => {
    await refusedCreate(t, 'month 13', 'r-dob-1', { ...valid, dateOfBirth: '1980-13-01' });
    await refusedCreate(t, 'Feb 30', 'r-dob-2', { ...valid, dateOfBirth: '1980-02-30' });
    await refusedCreate(t, 'US format', 'r-dob-3', { ...valid, dateOfBirth: '01/02/1980' });
    const nextYear = new Date().getUTCFullYear() + 1;
    await refusedCreate(t, 'future date', 'r-dob-4', { ...valid, dateOfBirth: `${nextYear}-06-15` });
  });

  await t.test('phone not a phone', async (t) => {
    await refusedCreate(t, 'phone abc', 'r-phone', { ...valid, phone: 'abc' });
  });

  await t.test('no type coercion on bodies', async (t) => {
    await refusedCreate(t, 'displayName number', 'r-num-name', { ...valid, displayName: 12345 });
    await refusedCreate(t, 'email number', 'r-num-email', { ...valid, email: 42 });
    await refusedCreate(t, 'body is an array', 'r-array', [valid]);
  });

  await t.test('malformed JSON body', async (t) => {
    const res = await call('PUT', '/v1/customers/r-bad-json', integration, '{bad', { 'content-type': 'application/json' });
    assertProblem(t, res, 400, 'validation_failed', 'malformed JSON');
    await assertAbsent(t, 'r-bad-json');
  });

  await t.test('non-JSON content type', async (t) => {
    const res = await call('PUT', '/v1/customers/r-text', integration, JSON.stringify(valid), { 'content-type': 'text/plain' });
    assertProblem(t, res, 415, 'unsupported_media_type', 'text/plain');
    await assertAbsent(t, 'r-text');
  });

  await t.test('body over 256 KiB', async (t) => {
    const big = JSON.stringify({ ...valid, displayName: 'x'.repeat(256 * 1024 + 10) });
    const res = await call('PUT', '/v1/customers/r-big', integration, big, { 'content-type': 'application/json' });
    assertProblem(t, res, 413, 'payload_too_large', 'oversized body');
    await assertAbsent(t, 'r-big');
  });

  await t.test('record id with forbidden characters or too long', async (t) => {
    const space = await call('PUT', '/v1/customers/a%20b', integration, valid);
    assertProblem(t, space, 400, 'validation_failed', 'id with a space');
    const slashy = await call('PUT', '/v1/customers/a%2Fb', integration, valid);
    t.ok(slashy.statusCode >= 400 && slashy.statusCode < 500, 'id with an encoded slash is a 4xx');
    const long = 'a'.repeat(130);
    const tooLong = await call('PUT', `/v1/customers/${long}`, integration, valid);
    assertProblem(t, tooLong, 400, 'validation_failed', '130-char id');
    const audit = await call('GET', '/v1/audit-events?action=record.upserted&limit=200', h.admin());
    t.equal(audit.statusCode, 200);
    const ids = (audit.json() as { items: { record: { id: string } | null }[] }).items.map((e) => e.record?.id);
    t.notOk(ids.includes('a b'), 'no record "a b"');
    t.notOk(ids.includes(long), 'no 130-char record');
  });

  await t.test('the documented id length bound (128) is accepted', async (t) => {
    const id128 = 'b'.repeat(128);
    const res = await call('PUT', `/v1/customers/${id128}`, integration, valid);
    t.equal(res.statusCode, 201, '128-char id is accepted');
    const id100 = 'c'.repeat(100);
    const ok = await call('PUT', `/v1/customers/${id100}`, integration, valid);
    t.equal(ok.statusCode, 201, '100-char id is accepted');
  });

  await t.test('a refused PUT leaves an existing record unchanged', async (t) => {
    const created = await call('PUT', '/v1/volunteers/v-keep', integration, valid);
    t.equal(created.statusCode, 201);
    const before = (await get('v-keep', 'volunteers')).json() as Record<string, unknown>;
    const res = await call('PUT', '/v1/volunteers/v-keep', integration, { ...valid, displayName: 'Changed', email: 'nope' });
    assertProblem(t, res, 400, 'validation_failed', 'bad email on update');
    const future = await call('PUT', '/v1/volunteers/v-keep', integration, { ...valid, displayName: 'Changed', dateOfBirth: '2999-01-01' });
    assertProblem(t, future, 400, 'validation_failed', 'future dob on update');
    const after = (await get('v-keep', 'volunteers')).json() as Record<string, unknown>;
    t.same(after, before, 'record unchanged');
  });

  await t.test('null clears an optional field', async (t) => {
    const first = await call('PUT', '/v1/customers/r-null', integration, valid);
    t.equal(first.statusCode, 201, 'created');
    t.equal((first.json() as { email: string | null }).email, valid.email);
    const second = await call('PUT', '/v1/customers/r-null', integration, { ...valid, email: null });
    t.equal(second.statusCode, 200, 'replaced');
    t.equal((second.json() as { email: string | null }).email, null, 'email cleared in the answer');
    const read = await get('r-null');
    t.equal(read.statusCode, 200);
    t.equal((read.json() as { email: string | null }).email, null, 'email cleared when read back');
    t.equal((read.json() as { displayName: string }).displayName, valid.displayName, 'other fields kept');
  });

  t.ok(seen.length > 0, 'made calls');
  t.same(
    seen.filter((s) => s >= 500),
    [],
    'no answer was a 5xx',
  );
});
