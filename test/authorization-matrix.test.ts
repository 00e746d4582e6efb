/**
 * Authorization matrix: for each route and each kind of caller, the exact status code.
 *
 * Actors: staff, admin, integration, the patron of the record (patronOwn), the patron of
 * another record (patronOther), a caller of another organization (otherOrg) and no token.
 * Every non-2xx answer must be problem+json with a `code`.
 *
 * One harness per top-level test (PGlite startup costs about a second).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import t, { type Test } from 'tap';
import { createSigner } from 'fast-jwt';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { build, type Harness } from './fixtures/build.js';

type Method = NonNullable<InjectOptions['method']>;

interface Cell {
  actor: string;
  token: string | undefined;
  status: number;
  /** Extra checks on a cell's answer (the status has already been asserted). */
  check?: (res: LightMyRequestResponse, label: string) => void;
}

interface Body {
  [key: string]: unknown;
}

const json = (res: LightMyRequestResponse): Body => res.json() as Body;

const recordBody = (displayName: string) => ({
  displayName,
  email: 'pat@example.org',
  dateOfBirth: '1980-01-02',
  phone: '+1 555 0100',
});

const otherOrgId = () => `org-other-${randomUUID()}`;

/** A staff-side token of another organization, signed with the same key. */
const otherOrgToken = (h: Harness, org: string, role: 'staff' | 'admin' = 'staff') =>
  h.token({ sub: `x-${role}`, role, name: 'X', org });

/** Asserts the problem+json shape of any non-2xx answer. */
function assertProblemShape(t: Test, res: LightMyRequestResponse, label: string) {
  if (res.statusCode >= 200 && res.statusCode < 300) return;
  t.match(String(res.headers['content-type']), /^application\/problem\+json/, `${label}: content-type is problem+json`);
  let body: Body | undefined;
  try {
    body = json(res);
  } catch {
    body = undefined;
  }
  t.type(body?.code, 'string', `${label}: problem has a code`);
  t.equal(body?.status, res.statusCode, `${label}: problem status matches the HTTP status`);
}

/** Runs one cell: calls the route as the actor and asserts the exact status. */
async function runCell(
  t: Test,
  h: Harness,
  method: Method,
  url: string,
  route: string,
  cell: Cell,
  body?: unknown,
): Promise<LightMyRequestResponse> {
  const label = `${route} as ${cell.actor}`;
  const res = await h.call(method, url, cell.token, body);
  const why = res.statusCode === cell.status ? '' : ` (got ${res.statusCode}: ${res.body.slice(0, 300)})`;
  t.equal(res.statusCode, cell.status, `${label} -> ${cell.status}${why}`);
  assertProblemShape(t, res, label);
  cell.check?.(res, label);
  return res;
}

async function runRow(t: Test, h: Harness, method: Method, url: string, route: string, cells: Cell[], body?: unknown) {
  for (const cell of cells) await runCell(t, h, method, url, route, cell, body);
}

const hasCode = (t: Test, code: string) => (res: LightMyRequestResponse, label: string) => {
  t.equal(json(res).code, code, `${label}: code ${code}`);
};

/** The shared fixture: c-own, c-other and v-own, a replyable thread on c-own and one on v-own. */
async function seed(t: Test, h: Harness) {
  const integration = h.integration();
  for (const url of ['/v1/customers/c-own', '/v1/customers/c-other', '/v1/volunteers/v-own']) {
    const res = await h.call('PUT', url, integration, recordBody('Seeded Record'));
    t.equal(res.statusCode, 201, `seed: PUT ${url} creates`);
  }
  const open = async (kind: 'customer' | 'volunteer', id: string) => {
    const res = await h.call('POST', '/v1/threads', h.staff(), {
      record: { kind, id },
      subject: `About ${id}`,
      body: 'First message from staff',
      replyAllowed: true,
    });
    t.equal(res.statusCode, 201, `seed: staff opens a thread on ${kind} ${id}`);
    const created = json(res) as { thread: { id: string }; message: { id: string } };
    return { threadId: created.thread.id, firstMessageId: created.message.id };
  };
  const customerThread = await open('customer', 'c-own');
  const volunteerThread = await open('volunteer', 'v-own');
  return { customerThread, volunteerThread };
}

t.test('records: PUT and GET /v1/customers|volunteers/{id}', async (t) => {
  const h = await build(t);
  const integration = h.integration();
  for (const url of ['/v1/customers/c-own', '/v1/customers/c-other', '/v1/volunteers/v-own']) {
    t.equal((await h.call('PUT', url, integration, recordBody('First Org Record'))).statusCode, 201, `seed: PUT ${url} creates`);
  }

  // One other org for the writes (it gets its own records), a fresh one for the reads.
  const writerOrg = otherOrgId();
  const readerOrg = otherOrgId();

  for (const kind of ['customer', 'volunteer'] as const) {
    const ownId = kind === 'customer' ? 'c-own' : 'v-own';
    const url = `/v1/${kind}s/${ownId}`;
    const patronOwn = h.patron(`${kind}:${ownId}`);
    const patronOther = h.patron('customer:c-other');

    await t.test(`PUT ${url}`, async (t) => {
      const route = `PUT /v1/${kind}s/${ownId}`;
      const body = recordBody('First Org Record');
      await runRow(t, h, 'PUT', url, route, [
        { actor: 'staff', token: h.staff(), status: 200 },
        { actor: 'admin', token: h.admin(), status: 200 },
        { actor: 'integration', token: h.integration(), status: 200 },
        { actor: 'patronOwn', token: patronOwn, status: 403 },
        { actor: 'patronOther', token: patronOther, status: 403 },
        { actor: 'none', token: undefined, status: 401 },
      ], body);
      await runCell(t, h, 'PUT', url, route, {
        actor: 'otherOrg',
        token: otherOrgToken(h, writerOrg),
        status: 201,
        check: (res, label) => t.equal(json(res).displayName, 'Other Org Record', `${label}: the other org's own record`),
      }, recordBody('Other Org Record'));

      // The other org's write made a separate record: the first org's is untouched.
      const mine = await h.call('GET', url, h.staff());
      t.equal(mine.statusCode, 200, `${route}: first org staff still reads its record`);
      t.equal(json(mine).displayName, 'First Org Record', `${route}: otherOrg upsert did not touch the first org's record`);
      const theirs = await h.call('GET', url, otherOrgToken(h, writerOrg));
      t.equal(theirs.statusCode, 200, `${route}: other org reads its own record`);
      t.equal(json(theirs).displayName, 'Other Org Record', `${route}: other org sees only its own record`);
    });

    await t.test(`GET ${url}`, async (t) => {
      const route = `GET /v1/${kind}s/${ownId}`;
      await runRow(t, h, 'GET', url, route, [
        {
          actor: 'staff',
          token: h.staff(),
          status: 200,
          check: (res, label) => t.equal(json(res).displayName, 'First Org Record', `${label}: body`),
        },
        { actor: 'admin', token: h.admin(), status: 200 },
        { actor: 'integration', token: h.integration(), status: 403 },
        { actor: 'patronOwn', token: patronOwn, status: 403 },
        { actor: 'patronOther', token: patronOther, status: 403 },
        { actor: 'otherOrg', token: otherOrgToken(h, readerOrg), status: 404 },
        { actor: 'none', token: undefined, status: 401 },
      ]);
    });
  }
});

t.test('threads and messages', async (t) => {
  const h = await build(t);
  const { customerThread, volunteerThread } = await seed(t, h);
  const { threadId, firstMessageId } = customerThread;
  const otherOrg = otherOrgToken(h, otherOrgId()); // never upserted anything
  const patronOwn = h.patron('customer:c-own');
  const patronOther = h.patron('customer:c-other');
  const threadUrl = `/v1/threads/${threadId}`;

  const itemCount = (n: number) => (res: LightMyRequestResponse, label: string) =>
    t.equal((json(res).items as unknown[]).length, n, `${label}: ${n} item(s)`);

  // First, before any other thread exists on c-own.
  await t.test('GET /v1/me/threads', async (t) => {
    await runRow(t, h, 'GET', '/v1/me/threads', 'GET /v1/me/threads', [
      {
        actor: 'patronOwn',
        token: patronOwn,
        status: 200,
        check: (res, label) => {
          itemCount(1)(res, label);
          t.equal((json(res).items as { id: string }[])[0]?.id, threadId, `${label}: its own thread`);
        },
      },
      { actor: 'patronOther', token: patronOther, status: 200, check: itemCount(0) },
      { actor: 'staff', token: h.staff(), status: 403 },
      { actor: 'admin', token: h.admin(), status: 403 },
      { actor: 'integration', token: h.integration(), status: 403 },
      { actor: 'none', token: undefined, status: 401 },
    ]);
  });

  await t.test('GET /v1/threads/{id}', async (t) => {
    await runRow(t, h, 'GET', threadUrl, 'GET /v1/threads/{id}', [
      { actor: 'staff', token: h.staff(), status: 200 },
      { actor: 'admin', token: h.admin(), status: 200 },
      { actor: 'integration', token: h.integration(), status: 403 },
      {
        actor: 'patronOwn',
        token: patronOwn,
        status: 200,
        check: (res, label) => t.equal(json(res).id, threadId, `${label}: the thread`),
      },
      { actor: 'patronOther', token: patronOther, status: 404 },
      { actor: 'otherOrg', token: otherOrg, status: 404 },
      { actor: 'none', token: undefined, status: 401 },
    ]);
  });

  await t.test('PATCH /v1/threads/{id}', async (t) => {
    await runRow(t, h, 'PATCH', threadUrl, 'PATCH /v1/threads/{id}', [
      { actor: 'staff', token: h.staff(), status: 200 },
      { actor: 'admin', token: h.admin(), status: 200 },
      { actor: 'integration', token: h.integration(), status: 403 },
      { actor: 'patronOwn', token: patronOwn, status: 403 },
      { actor: 'patronOther', token: patronOther, status: 403 },
      { actor: 'otherOrg', token: otherOrg, status: 404 },
      { actor: 'none', token: undefined, status: 401 },
    ], { replyAllowed: true });
  });

  for (const kind of ['customer', 'volunteer'] as const) {
    const ownId = kind === 'customer' ? 'c-own' : 'v-own';
    const ownThread = kind === 'customer' ? threadId : volunteerThread.threadId;
    const route = `GET /v1/${kind}s/${ownId}/threads`;
    await t.test(route, async (t) => {
      const listsOwnThread = (res: LightMyRequestResponse, label: string) =>
        t.ok((json(res).items as { id: string }[]).some((i) => i.id === ownThread), `${label}: lists the record's thread`);
      await runRow(t, h, 'GET', `/v1/${kind}s/${ownId}/threads`, route, [
        { actor: 'staff', token: h.staff(), status: 200, check: listsOwnThread },
        { actor: 'admin', token: h.admin(), status: 200 },
        { actor: 'integration', token: h.integration(), status: 403 },
        { actor: 'patronOwn', token: h.patron(`${kind}:${ownId}`), status: 200, check: listsOwnThread },
        { actor: 'patronOther', token: patronOther, status: 404 },
        { actor: 'otherOrg', token: otherOrg, status: 404 },
        { actor: 'none', token: undefined, status: 401 },
      ]);
    });
  }

  await t.test('GET /v1/threads/{id}/messages', async (t) => {
    await runRow(t, h, 'GET', `${threadUrl}/messages`, 'GET /v1/threads/{id}/messages', [
      { actor: 'staff', token: h.staff(), status: 200 },
      { actor: 'admin', token: h.admin(), status: 200 },
      { actor: 'integration', token: h.integration(), status: 403 },
      {
        actor: 'patronOwn',
        token: patronOwn,
        status: 200,
        check: (res, label) => t.equal((json(res).items as { id: string }[])[0]?.id, firstMessageId, `${label}: first message`),
      },
      { actor: 'patronOther', token: patronOther, status: 404 },
      { actor: 'otherOrg', token: otherOrg, status: 404 },
      { actor: 'none', token: undefined, status: 401 },
    ]);
  });

  await t.test('POST /v1/threads/{id}/messages', async (t) => {
    await runRow(t, h, 'POST', `${threadUrl}/messages`, 'POST /v1/threads/{id}/messages', [
      { actor: 'staff', token: h.staff(), status: 201 },
      { actor: 'admin', token: h.admin(), status: 201 },
      { actor: 'integration', token: h.integration(), status: 403 },
      {
        actor: 'patronOwn',
        token: patronOwn,
        status: 201,
        check: (res, label) => t.equal((json(res).author as { kind: string }).kind, 'patron', `${label}: authored as patron`),
      },
      { actor: 'patronOther', token: patronOther, status: 404 },
      { actor: 'otherOrg', token: otherOrg, status: 404 },
      { actor: 'none', token: undefined, status: 401 },
    ], { body: 'hi' });
  });

  await t.test('POST /v1/threads/{id}/read', async (t) => {
    await runRow(t, h, 'POST', `${threadUrl}/read`, 'POST /v1/threads/{id}/read', [
      { actor: 'staff', token: h.staff(), status: 200 },
      { actor: 'admin', token: h.admin(), status: 200 },
      { actor: 'integration', token: h.integration(), status: 403 },
      {
        actor: 'patronOwn',
        token: patronOwn,
        status: 200,
        check: (res, label) => t.same(json(res).messageIds, [firstMessageId], `${label}: marks the staff message read`),
      },
      { actor: 'patronOther', token: patronOther, status: 404 },
      { actor: 'otherOrg', token: otherOrg, status: 404 },
      { actor: 'none', token: undefined, status: 401 },
    ], { upTo: firstMessageId });
  });

  // Last: it creates threads on c-own.
  await t.test('POST /v1/threads', async (t) => {
    await runRow(t, h, 'POST', '/v1/threads', 'POST /v1/threads', [
      { actor: 'staff', token: h.staff(), status: 201 },
      { actor: 'admin', token: h.admin(), status: 201 },
      { actor: 'integration', token: h.integration(), status: 403 },
      { actor: 'patronOwn', token: patronOwn, status: 403 },
      { actor: 'patronOther', token: patronOther, status: 403 },
      { actor: 'otherOrg', token: otherOrg, status: 422, check: hasCode(t, 'record_not_found') },
      { actor: 'none', token: undefined, status: 401 },
    ], { record: { kind: 'customer', id: 'c-own' }, subject: 'Matrix', body: 'Hello', replyAllowed: true });
  });
});

t.test('audit events', async (t) => {
  const h = await build(t);
  const { customerThread, volunteerThread } = await seed(t, h);
  const ownThreadIds = new Set([customerThread.threadId, volunteerThread.threadId]);
  const patronOwn = h.patron('customer:c-own');

  await t.test('a denied 403 is audited as denied', async (t) => {
    const denied = await h.call('POST', '/v1/threads', patronOwn, {
      record: { kind: 'customer', id: 'c-own' },
      subject: 'Not allowed',
      body: 'Patrons never start a thread',
      replyAllowed: true,
    });
    t.equal(denied.statusCode, 403, 'POST /v1/threads as patronOwn -> 403');
    assertProblemShape(t, denied, 'POST /v1/threads as patronOwn');
    const res = await h.call('GET', '/v1/audit-events?outcome=denied&limit=200', h.admin());
    t.equal(res.statusCode, 200, 'GET /v1/audit-events?outcome=denied as admin -> 200');
    const items = json(res).items as { action: string; outcome: string; actor: { kind: string; id: string | null }; reason: string | null }[];
    t.ok(items.length > 0, 'at least one denied event');
    t.ok(items.every((i) => i.outcome === 'denied'), 'the outcome filter holds');
    const match = items.find((i) => i.action === 'thread.created' && i.actor.kind === 'patron');
    t.ok(match, 'the patron attempt to open a thread is audited');
    t.equal(match?.actor.id, 'patron-customer:c-own', 'the denied event names the patron');
    t.equal(match?.reason, 'forbidden', 'the denied event carries the reason code');
  });

  await t.test('GET /v1/audit-events', async (t) => {
    await runRow(t, h, 'GET', '/v1/audit-events', 'GET /v1/audit-events', [
      {
        actor: 'admin',
        token: h.admin(),
        status: 200,
        check: (res, label) =>
          t.ok((json(res).items as { threadId: string | null }[]).some((i) => i.threadId !== null && ownThreadIds.has(i.threadId)), `${label}: sees its own thread events`),
      },
      { actor: 'staff', token: h.staff(), status: 403 },
      { actor: 'integration', token: h.integration(), status: 403 },
      { actor: 'patronOwn', token: patronOwn, status: 403 },
      { actor: 'none', token: undefined, status: 401 },
    ]);

    // The other org acts on its own and pokes at this org's threads; its trail must hold none of ours.
    const org = otherOrgId();
    const otherStaff = otherOrgToken(h, org, 'staff');
    const otherAdmin = otherOrgToken(h, org, 'admin');
    t.equal((await h.call('PUT', '/v1/customers/c-own', otherStaff, recordBody('Other'))).statusCode, 201, 'other org upserts its own c-own');
    for (const id of ownThreadIds) {
      t.equal((await h.call('GET', `/v1/threads/${id}`, otherStaff)).statusCode, 404, 'other org staff cannot open our thread');
      t.equal((await h.call('POST', `/v1/threads/${id}/messages`, otherStaff, { body: 'x' })).statusCode, 404, 'other org staff cannot post to our thread');
    }
    await runCell(t, h, 'GET', '/v1/audit-events?limit=200', 'GET /v1/audit-events', {
      actor: 'otherOrg admin',
      token: otherAdmin,
      status: 200,
      check: (res, label) => {
        const items = json(res).items as { threadId: string | null; record: { id: string } | null }[];
        t.ok(items.length > 0, `${label}: the other org has its own events`);
        t.notOk(
          items.some((i) => i.threadId !== null && ownThreadIds.has(i.threadId)),
          `${label}: no item has a threadId of this org's threads`,
        );
      },
    });
  });

  await t.test('GET /v1/audit-events/verify', async (t) => {
    await runRow(t, h, 'GET', '/v1/audit-events/verify', 'GET /v1/audit-events/verify', [
      {
        actor: 'admin',
        token: h.admin(),
        status: 200,
        check: (res, label) => t.equal(json(res).valid, true, `${label}: the chain is valid`),
      },
      { actor: 'staff', token: h.staff(), status: 403 },
      { actor: 'integration', token: h.integration(), status: 403 },
      { actor: 'patronOwn', token: patronOwn, status: 403 },
      { actor: 'none', token: undefined, status: 401 },
    ]);
  });
});

t.test('token-level cells on GET /v1/threads/{id}', async (t) => {
  const h = await build(t);
  const { customerThread } = await seed(t, h);
  const url = `/v1/threads/${customerThread.threadId}`;
  const route = 'GET /v1/threads/{id}';
  const staffClaims = { sub: 'staff-alice', role: 'staff', name: 'Alice Staff' };

  const expired = h.token(staffClaims, { expiresIn: 1 });
  await sleep(20);

  const wrongSecret = createSigner({ key: randomBytes(32).toString('hex'), algorithm: 'HS256', expiresIn: 600_000 })({
    ...staffClaims,
    org: h.orgId,
  });

  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v), 'utf8').toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const algNone = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ ...staffClaims, org: h.orgId, iat: now, exp: now + 600 })}.`;

  const missingOrg = h.token({ ...staffClaims, org: undefined });
  const payloadOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as Body;
  t.notOk('org' in payloadOf(missingOrg), 'the missing-org token really has no org claim');

  const unauthorized = hasCode(t, 'unauthorized');
  await runRow(t, h, 'GET', url, route, [
    { actor: 'staff (valid control)', token: h.staff(), status: 200 },
    { actor: 'staff expired token', token: expired, status: 401, check: unauthorized },
    { actor: 'staff token signed with another secret', token: wrongSecret, status: 401, check: unauthorized },
    { actor: 'staff alg:none token', token: algNone, status: 401, check: unauthorized },
    { actor: 'staff token without org', token: missingOrg, status: 401, check: unauthorized },
    { actor: 'role superuser', token: h.token({ ...staffClaims, role: 'superuser' }), status: 401, check: unauthorized },
    { actor: 'patron without rec', token: h.token({ sub: 'patron-x', role: 'patron', name: 'Pat' }), status: 401, check: unauthorized },
  ]);
});

t.test('access links: grant, list and revoke (401, 403, cross-org 404, bad input)', async (t) => {
  const h = await build(t);
  const { customerThread } = await seed(t, h);
  const threadId = customerThread.threadId;
  const patronOwn = h.patron('customer:c-own');
  const org = otherOrgId();
  const otherStaff = otherOrgToken(h, org, 'staff');
  const otherAdmin = otherOrgToken(h, org, 'admin');
  const grant = { email: 'guest@example.org', expiresIn: '7d', verify: { dateOfBirth: true, phone: false } };
  const noSecrets = (res: LightMyRequestResponse, label: string) => {
    const link = json(res);
    t.type(link.id, 'string', `${label}: the link has an id`);
    t.notOk(/token|hash|secret/i.test(Object.keys(link).join(' ')), `${label}: no token or token hash in the answer (${Object.keys(link).join(', ')})`);
    t.notOk(/[A-Za-z0-9_-]{43}/.test(res.body), `${label}: nothing shaped like a link token in it`);
  };

  await runRow(
    t,
    h,
    'POST',
    `/v1/threads/${threadId}/access-links`,
    'POST /v1/threads/{id}/access-links',
    [
      { actor: 'staff', token: h.staff(), status: 201, check: noSecrets },
      { actor: 'admin', token: h.admin(), status: 201, check: noSecrets },
      { actor: 'integration', token: h.integration(), status: 403 },
      { actor: 'patronOwn', token: patronOwn, status: 403 },
      { actor: 'otherOrg staff', token: otherStaff, status: 404 },
      { actor: 'otherOrg admin', token: otherAdmin, status: 404 },
      { actor: 'none', token: undefined, status: 401 },
    ],
    grant,
  );
  for (const [label, body] of [
    ['an unknown field', { ...grant, note: 'x' }],
    ['a malformed address', { ...grant, email: 'not-an-address' }],
    ['an expiry outside the choices', { ...grant, expiresIn: '365d' }],
    ['no body fields', {}],
    ['a wrong type', { ...grant, verify: 'yes' }],
  ] as const) {
    await runCell(t, h, 'POST', `/v1/threads/${threadId}/access-links`, `POST access-links with ${label}`, { actor: 'staff', token: h.staff(), status: 400, check: hasCode(t, 'validation_failed') }, body);
  }
  await runCell(t, h, 'POST', '/v1/threads/not-a-uuid/access-links', 'POST access-links on a malformed thread id', { actor: 'staff', token: h.staff(), status: 400 }, grant);
  await runCell(t, h, 'POST', `/v1/threads/${randomUUID()}/access-links`, 'POST access-links on an unknown thread', { actor: 'staff', token: h.staff(), status: 404 }, grant);

  const listUrl = `/v1/threads/${threadId}/access-links`;
  await runRow(t, h, 'GET', listUrl, 'GET /v1/threads/{id}/access-links', [
    { actor: 'staff', token: h.staff(), status: 200, check: (res, label) => t.equal((json(res).items as unknown[]).length, 2, `${label}: both links listed`) },
    { actor: 'admin', token: h.admin(), status: 200 },
    { actor: 'integration', token: h.integration(), status: 403 },
    { actor: 'patronOwn', token: patronOwn, status: 403 },
    { actor: 'otherOrg staff', token: otherStaff, status: 404 },
    { actor: 'none', token: undefined, status: 401 },
  ]);
  await runCell(t, h, 'GET', `${listUrl}?limit=0`, 'GET access-links with limit=0', { actor: 'staff', token: h.staff(), status: 400, check: hasCode(t, 'validation_failed') });
  await runCell(t, h, 'GET', `${listUrl}?cursor=not-a-cursor`, 'GET access-links with a forged cursor', { actor: 'staff', token: h.staff(), status: 400 });
  await runCell(t, h, 'GET', `${listUrl}?extra=1`, 'GET access-links with an unknown parameter', { actor: 'staff', token: h.staff(), status: 400 });

  const link = json(await h.call('POST', listUrl, h.staff(), grant)) as { id: string };
  const revokeUrl = `/v1/access-links/${link.id}`;
  await runRow(t, h, 'DELETE', revokeUrl, 'DELETE /v1/access-links/{id}', [
    { actor: 'integration', token: h.integration(), status: 403 },
    { actor: 'patronOwn', token: patronOwn, status: 403 },
    { actor: 'otherOrg staff', token: otherStaff, status: 404 },
    { actor: 'otherOrg admin', token: otherAdmin, status: 404 },
    { actor: 'none', token: undefined, status: 401 },
  ]);
  const listed = (json(await h.call('GET', `${listUrl}?limit=100`, h.staff())).items as { id: string; state: string }[]).find((l) => l.id === link.id);
  t.equal(listed?.state, 'active', 'none of the refused attempts revoked the link');
  await runCell(t, h, 'DELETE', revokeUrl, 'DELETE /v1/access-links/{id}', { actor: 'staff', token: h.staff(), status: 200 });
  const after = (json(await h.call('GET', `${listUrl}?limit=100`, h.staff())).items as { id: string; state: string }[]).find((l) => l.id === link.id);
  t.equal(after?.state, 'revoked', 'staff revoked it');
  await runCell(t, h, 'DELETE', '/v1/access-links/not-a-uuid', 'DELETE a malformed link id', { actor: 'staff', token: h.staff(), status: 400 });
  await runCell(t, h, 'DELETE', `/v1/access-links/${randomUUID()}`, 'DELETE an unknown link', { actor: 'staff', token: h.staff(), status: 404 });
});

t.test('audit checkpoints: take one, verify against it (401, 403, cross-org, bad input)', async (t) => {
  const h = await build(t);
  await seed(t, h);
  const patronOwn = h.patron('customer:c-own');
  const otherAdmin = otherOrgToken(h, otherOrgId(), 'admin');
  let checkpoint: Body = {};
  await runRow(t, h, 'GET', '/v1/audit-events/checkpoint', 'GET /v1/audit-events/checkpoint', [
    {
      actor: 'admin',
      token: h.admin(),
      status: 200,
      check: (res, label) => {
        checkpoint = json(res);
        t.equal(checkpoint.orgId, h.orgId, `${label}: of this org`);
        t.match(checkpoint.signature, /^[0-9a-f]{64}$/, `${label}: signed`);
      },
    },
    { actor: 'staff', token: h.staff(), status: 403 },
    { actor: 'integration', token: h.integration(), status: 403 },
    { actor: 'patronOwn', token: patronOwn, status: 403 },
    { actor: 'none', token: undefined, status: 401 },
  ]);
  await runRow(
    t,
    h,
    'POST',
    '/v1/audit-events/verify',
    'POST /v1/audit-events/verify',
    [
      { actor: 'admin', token: h.admin(), status: 200, check: (res, label) => t.equal(json(res).valid, true, `${label}: the chain reaches the checkpoint`) },
      { actor: 'staff', token: h.staff(), status: 403 },
      { actor: 'integration', token: h.integration(), status: 403 },
      { actor: 'patronOwn', token: patronOwn, status: 403 },
      // Another org's admin cannot test our checkpoint against anything: it names our org.
      { actor: 'otherOrg admin', token: otherAdmin, status: 422, check: hasCode(t, 'checkpoint_invalid') },
      { actor: 'none', token: undefined, status: 401 },
    ],
    { checkpoint },
  );
  const flipped = String(checkpoint.signature).replace(/^./, (c) => (c === '0' ? '1' : '0'));
  await runCell(t, h, 'POST', '/v1/audit-events/verify', 'POST verify with a forged signature', { actor: 'admin', token: h.admin(), status: 422, check: hasCode(t, 'checkpoint_invalid') }, { checkpoint: { ...checkpoint, signature: flipped } });
  await runCell(t, h, 'POST', '/v1/audit-events/verify', 'POST verify with a moved position', { actor: 'admin', token: h.admin(), status: 422, check: hasCode(t, 'checkpoint_invalid') }, { checkpoint: { ...checkpoint, seq: Number(checkpoint.seq) + 1 } });
  for (const [label, body] of [
    ['no checkpoint', {}],
    ['an unknown field', { checkpoint, extra: true }],
    ['a malformed hash', { checkpoint: { ...checkpoint, hash: 'xyz' } }],
    ['a negative position', { checkpoint: { ...checkpoint, seq: -1 } }],
  ] as const) {
    await runCell(t, h, 'POST', '/v1/audit-events/verify', `POST verify with ${label}`, { actor: 'admin', token: h.admin(), status: 400, check: hasCode(t, 'validation_failed') }, body);
  }
});
