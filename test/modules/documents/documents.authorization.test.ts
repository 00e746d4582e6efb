/**
 * Documents and attachments: who may reach which route, and the rules for attaching.
 *
 * A. The authorization matrix over the document, library, storage and settings routes, for
 *    staff, admin, integration, the patron of c-own (patronWith), the patron of c-other
 *    (patronWithout), staff of another organization (otherOrg) and no token (none).
 * B. Attachment rules on POST /v1/threads and POST /v1/threads/{id}/messages.
 *
 * Every non-2xx answer must be problem+json with a `code`. One harness per top-level test.
 */
import { randomUUID } from 'node:crypto';
import t, { type Test } from 'tap';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { build, type Harness } from '../../fixtures/build.js';
import { fileUpload } from '../../fixtures/multipart.js';
import * as f from '../../fixtures/files.js';
import { assertProblem } from '../../fixtures/problems.js';

type Method = NonNullable<InjectOptions['method']>;
type Body = Record<string, unknown>;

interface DocumentJson {
  id: string;
  owner: { kind: string; record?: { kind: string; id: string } };
  name: string;
  mediaType: string;
  size: number;
  checksum: string;
  private: boolean;
  source: string;
  createdBy: { kind: string; id: string };
}

interface AttachmentJson {
  id: string;
  name: string;
  mediaType: string;
  size: number;
  deleted: boolean;
}

interface MessageJson {
  id: string;
  threadId: string;
  attachments: AttachmentJson[];
}

interface AuditEventJson {
  action: string;
  outcome: string;
  actor: { kind: string; id: string | null };
  documentId: string | null;
  messageId: string | null;
  threadId: string | null;
}

interface Cell {
  actor: string;
  token: string | undefined;
  status: number;
  code?: string;
}

const json = <T = Body>(res: LightMyRequestResponse): T => res.json() as T;

const recordBody = (displayName: string) => ({ displayName, email: 'pat@example.org', dateOfBirth: '1980-01-02' });

/** Asserts the problem+json shape of a non-2xx answer (and its code, when given). */
function assertProblemShape(t: Test, res: LightMyRequestResponse, label: string, code?: string) {
  if (res.statusCode >= 200 && res.statusCode < 300) return;
  t.match(String(res.headers['content-type'] ?? ''), /^application\/problem\+json/, `${label}: problem+json content type`);
  let body: Body | undefined;
  try {
    body = json(res);
  } catch {
    body = undefined;
  }
  t.type(body?.code, 'string', `${label}: problem has a code`);
  t.equal(body?.status, res.statusCode, `${label}: problem status matches`);
  if (code !== undefined) t.equal(body?.code, code, `${label}: code ${code}`);
}

const why = (res: LightMyRequestResponse, status: number) => (res.statusCode === status ? '' : ` (got ${res.statusCode}: ${res.body.slice(0, 300)})`);

/** Multipart upload of one file as `token`. */
function upload(h: Harness, url: string, token: string | undefined, filename: string, bytes: Buffer, fields: Record<string, string> = {}) {
  const up = fileUpload(filename, bytes, fields);
  return h.app.inject({
    method: 'POST',
    url,
    headers: { ...up.headers, ...(token ? { authorization: `Bearer ${token}` } : {}) },
    payload: up.payload,
  });
}

/** A JSON call as one actor, asserting the status (and problem shape / code). */
async function cell(t: Test, h: Harness, method: Method, url: string, route: string, c: Cell, body?: unknown) {
  const label = `${route} as ${c.actor}`;
  const res = await h.call(method, url, c.token, body);
  t.equal(res.statusCode, c.status, `${label} -> ${c.status}${why(res, c.status)}`);
  assertProblemShape(t, res, label, c.code);
  return res;
}

/** An upload as one actor, asserting the status (and problem shape / code). */
async function uploadCell(t: Test, h: Harness, url: string, route: string, c: Cell, filename: string, bytes: Buffer, fields?: Record<string, string>) {
  const label = `${route} as ${c.actor}`;
  const res = await upload(h, url, c.token, filename, bytes, fields);
  t.equal(res.statusCode, c.status, `${label} -> ${c.status}${why(res, c.status)}`);
  assertProblemShape(t, res, label, c.code);
  return res;
}

interface Actors {
  staff: string;
  admin: string;
  integration: string;
  patronWith: string;
  patronWithout: string;
  otherOrg: string;
  otherOrgId: string;
}

function actorsOf(h: Harness): Actors {
  const otherOrgId = `org-other-${randomUUID()}`;
  return {
    staff: h.staff(),
    admin: h.admin(),
    integration: h.integration(),
    patronWith: h.patron('customer:c-own'),
    patronWithout: h.patron('customer:c-other'),
    otherOrg: h.token({ sub: 'x-staff', role: 'staff', name: 'X Staff', org: otherOrgId }),
    otherOrgId,
  };
}

interface Seeded {
  a: Actors;
  bytes: { docA: Buffer; docOther: Buffer; libPublic: Buffer; libPrivate: Buffer };
  docA: DocumentJson;
  docOther: DocumentJson;
  libPublic: DocumentJson;
  libPrivate: DocumentJson;
  threadId: string;
  firstMessage: MessageJson;
}

/** Distinct PDFs, so a byte comparison cannot pass by accident. */
const pdfWith = (tag: string) => Buffer.concat([f.pdf(), Buffer.from(`%${tag}\n`, 'latin1')]);

async function seed(t: Test, h: Harness): Promise<Seeded> {
  const a = actorsOf(h);
  for (const url of ['/v1/customers/c-own', '/v1/customers/c-other', '/v1/volunteers/v-own']) {
    const res = await h.call('PUT', url, a.integration, recordBody('Seeded Record'));
    t.equal(res.statusCode, 201, `seed: PUT ${url} creates${why(res, 201)}`);
  }
  const bytes = { docA: pdfWith('docA'), docOther: pdfWith('docOther'), libPublic: pdfWith('libPublic'), libPrivate: pdfWith('libPrivate') };
  const put = async (url: string, name: string, data: Buffer, fields?: Record<string, string>) => {
    const res = await upload(h, url, a.staff, name, data, fields);
    t.equal(res.statusCode, 201, `seed: staff uploads ${name}${why(res, 201)}`);
    return json<DocumentJson>(res);
  };
  const docA = await put('/v1/customers/c-own/documents', 'Befund Müller.pdf', bytes.docA);
  const docOther = await put('/v1/customers/c-other/documents', 'other.pdf', bytes.docOther);
  const libPublic = await put('/v1/library/documents', 'leaflet.pdf', bytes.libPublic);
  const libPrivate = await put('/v1/library/documents', 'internal.pdf', bytes.libPrivate, { private: 'true' });
  t.equal(libPublic.private, false, 'seed: libPublic is not private');
  t.equal(libPrivate.private, true, 'seed: libPrivate is private (field sent before the file part)');
  const res = await h.call('POST', '/v1/threads', a.staff, {
    record: { kind: 'customer', id: 'c-own' },
    subject: 'Your documents',
    body: 'Please find attached',
    replyAllowed: true,
    attachments: [{ documentId: docA.id }, { documentId: libPublic.id }],
  });
  t.equal(res.statusCode, 201, `seed: staff opens a thread on c-own with attachments${why(res, 201)}`);
  const created = json<{ thread: { id: string }; message: MessageJson }>(res);
  return { a, bytes, docA, docOther, libPublic, libPrivate, threadId: created.thread.id, firstMessage: created.message };
}

/** Download answer checks: the exact bytes and the safe-download headers. */
function assertDownload(t: Test, res: LightMyRequestResponse, expected: Buffer, label: string) {
  t.ok(res.rawPayload.equals(expected), `${label}: body is byte-identical to the upload`);
  const disposition = String(res.headers['content-disposition'] ?? '');
  t.ok(disposition.startsWith('attachment;'), `${label}: content-disposition is an attachment (${disposition})`);
  t.ok(disposition.includes("filename*=UTF-8''"), `${label}: content-disposition has filename*=UTF-8''`);
  t.equal(res.headers['x-content-type-options'], 'nosniff', `${label}: nosniff`);
  t.equal(res.headers['cache-control'], 'no-store', `${label}: cache-control no-store`);
  t.equal(res.headers['content-type'], 'application/pdf', `${label}: content-type is the detected type`);
  t.equal(res.headers['content-length'], String(expected.length), `${label}: content-length is the size`);
  t.type(res.headers['repr-digest'], 'string', `${label}: repr-digest present`);
  t.match(String(res.headers['repr-digest'] ?? ''), /^sha-256=:[A-Za-z0-9+/]+=*:$/, `${label}: repr-digest is a sha-256 digest`);
}

// ------------------------------------------------------------------------------------------ A

t.test('A1: reading and downloading documents', async (t) => {
  const h = await build(t);
  const s = await seed(t, h);
  const { a } = s;

  const fullRow = (doc: DocumentJson, data: Buffer, name: string) => ({ doc, data, name });
  const matrix = [fullRow(s.docA, s.bytes.docA, 'docA'), fullRow(s.libPublic, s.bytes.libPublic, 'libPublic')];
  for (const { doc, data, name } of matrix) {
    const cells: Cell[] = [
      { actor: 'staff', token: a.staff, status: 200 },
      { actor: 'admin', token: a.admin, status: 200 },
      { actor: 'integration', token: a.integration, status: 403, code: 'forbidden' },
      { actor: 'patronWith', token: a.patronWith, status: 200 },
      { actor: 'patronWithout', token: a.patronWithout, status: 404, code: 'not_found' },
      { actor: 'otherOrg', token: a.otherOrg, status: 404, code: 'not_found' },
      { actor: 'none', token: undefined, status: 401, code: 'unauthorized' },
    ];
    for (const c of cells) {
      const meta = await cell(t, h, 'GET', `/v1/documents/${doc.id}`, `GET ${name}`, c);
      if (meta.statusCode === 200) {
        const body = json<DocumentJson>(meta);
        t.equal(body.id, doc.id, `GET ${name} as ${c.actor}: the document`);
        t.equal(body.size, data.length, `GET ${name} as ${c.actor}: size`);
        t.equal(body.mediaType, 'application/pdf', `GET ${name} as ${c.actor}: detected media type`);
      }
      const content = await cell(t, h, 'GET', `/v1/documents/${doc.id}/content`, `GET ${name}/content`, c);
      if (content.statusCode === 200) assertDownload(t, content, data, `GET ${name}/content as ${c.actor}`);
    }
  }

  // docOther: staff reach it; the patron of c-own does not (not attached in its threads).
  for (const path of ['', '/content']) {
    const staff = await cell(t, h, 'GET', `/v1/documents/${s.docOther.id}${path}`, `GET docOther${path}`, { actor: 'staff', token: a.staff, status: 200 });
    if (path === '/content' && staff.statusCode === 200) assertDownload(t, staff, s.bytes.docOther, 'GET docOther/content as staff');
    await cell(t, h, 'GET', `/v1/documents/${s.docOther.id}${path}`, `GET docOther${path}`, { actor: 'patronWith', token: a.patronWith, status: 404, code: 'not_found' });
  }

  // libPrivate: staff reach it; the patron does not (never attached, and cannot be).
  for (const path of ['', '/content']) {
    const staff = await cell(t, h, 'GET', `/v1/documents/${s.libPrivate.id}${path}`, `GET libPrivate${path}`, { actor: 'staff', token: a.staff, status: 200 });
    if (path === '/content' && staff.statusCode === 200) assertDownload(t, staff, s.bytes.libPrivate, 'GET libPrivate/content as staff');
    await cell(t, h, 'GET', `/v1/documents/${s.libPrivate.id}${path}`, `GET libPrivate${path}`, { actor: 'patronWith', token: a.patronWith, status: 404, code: 'not_found' });
  }

  // A missing document looks the same as one the patron may not see.
  await cell(t, h, 'GET', `/v1/documents/${randomUUID()}/content`, 'GET missing/content', { actor: 'staff', token: a.staff, status: 404, code: 'not_found' });

  // The denied patron download of docOther is in the audit trail.
  const audit = await h.call('GET', '/v1/audit-events?outcome=denied&limit=200', a.admin);
  t.equal(audit.statusCode, 200, `GET /v1/audit-events?outcome=denied as admin${why(audit, 200)}`);
  const denied = json<{ items: AuditEventJson[] }>(audit).items;
  const hit = denied.find((e) => e.action === 'document.downloaded' && e.documentId === s.docOther.id);
  t.ok(hit, 'a denied document.downloaded event names docOther');
  t.equal(hit?.outcome, 'denied', 'the event outcome is denied');
  t.equal(hit?.actor.kind, 'patron', 'the event actor is the patron');
  t.ok(denied.every((e) => e.outcome === 'denied'), 'the outcome filter returns only denied events');
});

t.test('A2: uploads, repositories, library and delete', async (t) => {
  const h = await build(t);
  const s = await seed(t, h);
  const { a } = s;

  await t.test('POST /v1/customers/c-own/documents', async (t) => {
    const url = '/v1/customers/c-own/documents';
    const route = 'POST c-own/documents';
    const cells: Cell[] = [
      { actor: 'staff', token: a.staff, status: 201 },
      { actor: 'admin', token: a.admin, status: 201 },
      { actor: 'integration', token: a.integration, status: 403, code: 'forbidden' },
      { actor: 'patronWith', token: a.patronWith, status: 201 },
      { actor: 'patronWithout', token: a.patronWithout, status: 404, code: 'not_found' },
      { actor: 'otherOrg', token: a.otherOrg, status: 404, code: 'not_found' },
      { actor: 'none', token: undefined, status: 401, code: 'unauthorized' },
    ];
    for (const c of cells) {
      const res = await uploadCell(t, h, url, route, c, `by-${c.actor}.pdf`, pdfWith(c.actor));
      if (res.statusCode !== 201) continue;
      const doc = json<DocumentJson>(res);
      t.same(doc.owner, { kind: 'record', record: { kind: 'customer', id: 'c-own' } }, `${route} as ${c.actor}: owned by c-own`);
      if (c.actor === 'patronWith') {
        t.equal(doc.source, 'message_reply', `${route} as patron: source message_reply`);
        t.equal(doc.createdBy.kind, 'patron', `${route} as patron: createdBy.kind patron`);
        // The patron reaches its own upload.
        const own = await h.call('GET', `/v1/documents/${doc.id}/content`, a.patronWith);
        t.equal(own.statusCode, 200, `patron downloads its own upload${why(own, 200)}`);
        t.ok(own.rawPayload.equals(pdfWith(c.actor)), 'patron download is byte-identical');
      } else {
        t.equal(doc.source, 'upload', `${route} as ${c.actor}: source upload`);
        t.equal(doc.createdBy.kind, c.actor, `${route} as ${c.actor}: createdBy.kind`);
      }
    }
  });

  await t.test('GET /v1/customers/c-own/documents', async (t) => {
    const cells: Cell[] = [
      { actor: 'staff', token: a.staff, status: 200 },
      { actor: 'admin', token: a.admin, status: 200 },
      { actor: 'integration', token: a.integration, status: 403, code: 'forbidden' },
      { actor: 'patronWith', token: a.patronWith, status: 403, code: 'forbidden' },
      { actor: 'patronWithout', token: a.patronWithout, status: 403, code: 'forbidden' },
      { actor: 'otherOrg', token: a.otherOrg, status: 404, code: 'not_found' },
      { actor: 'none', token: undefined, status: 401, code: 'unauthorized' },
    ];
    for (const c of cells) {
      const res = await cell(t, h, 'GET', '/v1/customers/c-own/documents', 'GET c-own/documents', c);
      if (res.statusCode === 200) {
        const ids = json<{ items: DocumentJson[] }>(res).items.map((d) => d.id);
        t.ok(ids.includes(s.docA.id), `GET c-own/documents as ${c.actor}: lists docA`);
        t.notOk(ids.includes(s.docOther.id), `GET c-own/documents as ${c.actor}: not docOther`);
        t.notOk(ids.includes(s.libPublic.id), `GET c-own/documents as ${c.actor}: not library documents`);
      }
    }
  });

  await t.test('volunteer v-own: upload and list', async (t) => {
    const url = '/v1/volunteers/v-own/documents';
    const uploads: Cell[] = [
      { actor: 'staff', token: a.staff, status: 201 },
      { actor: 'admin', token: a.admin, status: 201 },
      { actor: 'integration', token: a.integration, status: 403, code: 'forbidden' },
      { actor: 'patronWith (customer)', token: a.patronWith, status: 404, code: 'not_found' },
      { actor: 'otherOrg', token: a.otherOrg, status: 404, code: 'not_found' },
      { actor: 'none', token: undefined, status: 401, code: 'unauthorized' },
    ];
    let volunteerDoc: string | undefined;
    for (const c of uploads) {
      const res = await uploadCell(t, h, url, 'POST v-own/documents', c, 'volunteer.pdf', pdfWith(`v-${c.actor}`));
      if (res.statusCode === 201) {
        const doc = json<DocumentJson>(res);
        t.same(doc.owner, { kind: 'record', record: { kind: 'volunteer', id: 'v-own' } }, `POST v-own/documents as ${c.actor}: owned by v-own`);
        volunteerDoc ??= doc.id;
      }
    }
    const lists: Cell[] = [
      { actor: 'staff', token: a.staff, status: 200 },
      { actor: 'admin', token: a.admin, status: 200 },
      { actor: 'integration', token: a.integration, status: 403, code: 'forbidden' },
      { actor: 'patronWith', token: a.patronWith, status: 403, code: 'forbidden' },
      { actor: 'otherOrg', token: a.otherOrg, status: 404, code: 'not_found' },
      { actor: 'none', token: undefined, status: 401, code: 'unauthorized' },
    ];
    for (const c of lists) {
      const res = await cell(t, h, 'GET', url, 'GET v-own/documents', c);
      if (res.statusCode === 200) {
        const ids = json<{ items: DocumentJson[] }>(res).items.map((d) => d.id);
        t.ok(volunteerDoc !== undefined && ids.includes(volunteerDoc), `GET v-own/documents as ${c.actor}: lists the volunteer upload`);
        t.notOk(ids.includes(s.docA.id), `GET v-own/documents as ${c.actor}: not customer documents`);
      }
    }
  });

  await t.test('library: GET and POST /v1/library/documents', async (t) => {
    const gets: Cell[] = [
      { actor: 'staff', token: a.staff, status: 200 },
      { actor: 'admin', token: a.admin, status: 200 },
      { actor: 'integration', token: a.integration, status: 403, code: 'forbidden' },
      { actor: 'patronWith', token: a.patronWith, status: 403, code: 'forbidden' },
      { actor: 'patronWithout', token: a.patronWithout, status: 403, code: 'forbidden' },
      { actor: 'none', token: undefined, status: 401, code: 'unauthorized' },
    ];
    for (const c of gets) {
      const res = await cell(t, h, 'GET', '/v1/library/documents', 'GET library', c);
      if (res.statusCode === 200) {
        const items = json<{ items: DocumentJson[] }>(res).items;
        const ids = items.map((d) => d.id);
        t.ok(ids.includes(s.libPublic.id), `GET library as ${c.actor}: lists libPublic`);
        t.ok(ids.includes(s.libPrivate.id), `GET library as ${c.actor}: lists libPrivate`);
        t.equal(items.find((d) => d.id === s.libPrivate.id)?.private, true, `GET library as ${c.actor}: libPrivate is flagged private`);
        t.notOk(ids.includes(s.docA.id), `GET library as ${c.actor}: no record documents`);
      }
    }
    const other = await cell(t, h, 'GET', '/v1/library/documents', 'GET library', { actor: 'otherOrg', token: a.otherOrg, status: 200 });
    if (other.statusCode === 200) {
      const ids = json<{ items: DocumentJson[] }>(other).items.map((d) => d.id);
      const ours = [s.docA.id, s.docOther.id, s.libPublic.id, s.libPrivate.id];
      t.notOk(ids.some((id) => ours.includes(id)), 'GET library as otherOrg: none of this org’s documents');
    }

    const posts: Cell[] = [
      { actor: 'staff', token: a.staff, status: 201 },
      { actor: 'admin', token: a.admin, status: 201 },
      { actor: 'integration', token: a.integration, status: 403, code: 'forbidden' },
      { actor: 'patronWith', token: a.patronWith, status: 403, code: 'forbidden' },
      { actor: 'patronWithout', token: a.patronWithout, status: 403, code: 'forbidden' },
      { actor: 'none', token: undefined, status: 401, code: 'unauthorized' },
    ];
    for (const c of posts) {
      const res = await uploadCell(t, h, '/v1/library/documents', 'POST library', c, `lib-${c.actor}.pdf`, pdfWith(`lib-${c.actor}`));
      if (res.statusCode === 201) {
        const doc = json<DocumentJson>(res);
        t.same(doc.owner, { kind: 'library' }, `POST library as ${c.actor}: a library document`);
        t.equal(doc.private, false, `POST library as ${c.actor}: not private without the field`);
      }
    }
  });

  await t.test('DELETE /v1/documents/{id}', async (t) => {
    const url = `/v1/documents/${s.docA.id}`;
    const cells: Cell[] = [
      { actor: 'staff', token: a.staff, status: 409, code: 'retention_period_active' },
      { actor: 'admin', token: a.admin, status: 409, code: 'retention_period_active' },
      { actor: 'integration', token: a.integration, status: 403, code: 'forbidden' },
      { actor: 'patronWith', token: a.patronWith, status: 403, code: 'forbidden' },
      { actor: 'patronWithout', token: a.patronWithout, status: 403, code: 'forbidden' },
      { actor: 'otherOrg', token: a.otherOrg, status: 404, code: 'not_found' },
      { actor: 'none', token: undefined, status: 401, code: 'unauthorized' },
    ];
    for (const c of cells) await cell(t, h, 'DELETE', url, 'DELETE docA', c);
    // Still there, content intact.
    const after = await h.call('GET', `${url}/content`, a.staff);
    t.equal(after.statusCode, 200, 'docA is still downloadable after the refused deletes');
    t.ok(after.rawPayload.equals(s.bytes.docA), 'docA content is unchanged');
  });
});

t.test('A3: storage usage and settings', async (t) => {
  const h = await build(t);
  const a = actorsOf(h);
  const patron = h.patron('customer:c-own');

  const usage: Cell[] = [
    { actor: 'staff', token: a.staff, status: 200 },
    { actor: 'admin', token: a.admin, status: 200 },
    { actor: 'integration', token: a.integration, status: 403, code: 'forbidden' },
    { actor: 'patron', token: patron, status: 403, code: 'forbidden' },
    { actor: 'none', token: undefined, status: 401, code: 'unauthorized' },
  ];
  for (const c of usage) {
    const res = await cell(t, h, 'GET', '/v1/storage/usage', 'GET storage/usage', c);
    if (res.statusCode === 200) {
      const body = json(res);
      for (const k of ['allocationBytes', 'usedBytes', 'availableBytes', 'documentCount']) {
        t.type(body[k], 'number', `GET storage/usage as ${c.actor}: ${k}`);
      }
    }
  }

  const denied = (code: string): Cell[] => [
    { actor: 'staff', token: a.staff, status: 403, code },
    { actor: 'integration', token: a.integration, status: 403, code },
    { actor: 'patron', token: patron, status: 403, code },
  ];
  for (const c of [{ actor: 'admin', token: a.admin, status: 200 }, ...denied('forbidden'), { actor: 'none', token: undefined, status: 401, code: 'unauthorized' }]) {
    const res = await cell(t, h, 'GET', '/v1/settings', 'GET settings', c);
    if (res.statusCode === 200) {
      const body = json(res);
      t.type(body.storageAllocationBytes, 'number', 'GET settings: storageAllocationBytes');
      t.type(body.retentionYears, 'number', 'GET settings: retentionYears');
    }
  }
  for (const c of [{ actor: 'admin', token: a.admin, status: 200 }, ...denied('forbidden'), { actor: 'none', token: undefined, status: 401, code: 'unauthorized' }]) {
    const res = await cell(t, h, 'PATCH', '/v1/settings', 'PATCH settings', c, { retentionYears: 12 });
    if (res.statusCode === 200) t.equal(json(res).retentionYears, 12, 'PATCH settings as admin: applied');
  }
  const after = await h.call('GET', '/v1/settings', a.admin);
  t.equal(json(after).retentionYears, 12, 'only the admin PATCH changed the settings');

  for (const [body, label] of [
    [{}, '{}'],
    [{ retentionYears: 0 }, '{retentionYears: 0}'],
    [{ storageAllocationBytes: 'x' }, "{storageAllocationBytes: 'x'}"],
  ] as const) {
    const res = await h.call('PATCH', '/v1/settings', a.admin, body);
    assertProblem(t, res, 400, 'validation_failed', `PATCH settings ${label}`);
  }
});

// ------------------------------------------------------------------------------------------ B

t.test('B: attachment rules', async (t) => {
  const h = await build(t);
  const s = await seed(t, h);
  const { a } = s;

  /** Every successful attach, to compare with the audit trail at the end. */
  const attached: { messageId: string; documentId: string }[] = s.firstMessage.attachments.map((x) => ({
    messageId: s.firstMessage.id,
    documentId: x.id,
  }));
  t.same(
    s.firstMessage.attachments.map((x) => x.id),
    [s.docA.id, s.libPublic.id],
    'seed thread: the first message carries docA and libPublic',
  );

  const messagesUrl = `/v1/threads/${s.threadId}/messages`;
  const messageCount = async () => {
    const res = await h.call('GET', `${messagesUrl}?limit=200`, a.staff);
    t.equal(res.statusCode, 200, `GET messages${why(res, 200)}`);
    return json<{ items: MessageJson[] }>(res).items.length;
  };
  const threadCount = async () => {
    const res = await h.call('GET', '/v1/customers/c-own/threads?limit=200', a.staff);
    t.equal(res.statusCode, 200, `GET c-own/threads${why(res, 200)}`);
    return json<{ items: unknown[] }>(res).items.length;
  };
  const newThread = (attachments: { documentId: string }[]) =>
    h.call('POST', '/v1/threads', a.staff, {
      record: { kind: 'customer', id: 'c-own' },
      subject: 'Attachment test',
      body: 'See attached',
      replyAllowed: true,
      attachments,
    });
  const send = (attachments: { documentId: string }[], token = a.staff) => h.call('POST', messagesUrl, token, { body: 'See attached', attachments });
  const expectAttachment = (doc: DocumentJson): AttachmentJson => ({ id: doc.id, name: doc.name, mediaType: doc.mediaType, size: doc.size, deleted: false });

  await t.test('a non-private library document may be attached', async (t) => {
    const res = await newThread([{ documentId: s.libPublic.id }]);
    t.equal(res.statusCode, 201, `POST /v1/threads with libPublic -> 201${why(res, 201)}`);
    if (res.statusCode === 201) {
      const message = json<{ message: MessageJson }>(res).message;
      t.same(message.attachments, [expectAttachment(s.libPublic)], 'thread message lists libPublic as {id,name,mediaType,size,deleted:false}');
      t.strictSame(Object.keys(message.attachments[0] ?? {}).sort(), ['deleted', 'id', 'mediaType', 'name', 'size'], 'attachment has exactly these fields');
      attached.push({ messageId: message.id, documentId: s.libPublic.id });
    }
    const sent = await send([{ documentId: s.libPublic.id }]);
    t.equal(sent.statusCode, 201, `POST messages with libPublic -> 201${why(sent, 201)}`);
    if (sent.statusCode === 201) {
      const message = json<MessageJson>(sent);
      t.same(message.attachments, [expectAttachment(s.libPublic)], 'message lists libPublic as {id,name,mediaType,size,deleted:false}');
      attached.push({ messageId: message.id, documentId: s.libPublic.id });
    }
  });

  await t.test('refusals: 422 with a specific code, nothing written', async (t) => {
    // A document of another organization: its staff upload one to their own customer.
    const otherIntegration = h.token({ sub: 'x-ehr', role: 'integration', name: 'X EHR', org: a.otherOrgId });
    const put = await h.call('PUT', '/v1/customers/x-cust', otherIntegration, recordBody('Other Org Customer'));
    t.equal(put.statusCode, 201, `other org: PUT its customer${why(put, 201)}`);
    const foreignUpload = await upload(h, '/v1/customers/x-cust/documents', a.otherOrg, 'secret-diagnosis.pdf', pdfWith('foreign'));
    t.equal(foreignUpload.statusCode, 201, `other org: staff uploads to its own customer${why(foreignUpload, 201)}`);
    const foreign = json<DocumentJson>(foreignUpload);
    const missingId = randomUUID();

    const cases: { label: string; documentId: string; code: string }[] = [
      { label: 'a private library document', documentId: s.libPrivate.id, code: 'attachment_private' },
      { label: "another record's document", documentId: s.docOther.id, code: 'attachment_wrong_record' },
      { label: "another organization's document", documentId: foreign.id, code: 'attachment_not_found' },
      { label: 'a random UUID', documentId: missingId, code: 'attachment_not_found' },
    ];
    const details = new Map<string, string>();
    for (const c of cases) {
      const threadsBefore = await threadCount();
      const messagesBefore = await messageCount();
      const viaThread = await newThread([{ documentId: c.documentId }]);
      const p1 = assertProblem(t, viaThread, 422, c.code, `POST /v1/threads with ${c.label}`);
      const viaMessage = await send([{ documentId: c.documentId }]);
      const p2 = assertProblem(t, viaMessage, 422, c.code, `POST messages with ${c.label}`);
      // Mixed with an allowed one: the whole request is refused.
      const mixed = await send([{ documentId: s.libPublic.id }, { documentId: c.documentId }]);
      assertProblem(t, mixed, 422, c.code, `POST messages with libPublic and ${c.label}`);
      t.equal(await threadCount(), threadsBefore, `${c.label}: the customer's thread count is unchanged`);
      t.equal(await messageCount(), messagesBefore, `${c.label}: the thread's message count is unchanged`);
      details.set(c.label, String(p1.detail));
      t.equal(p1.detail, p2.detail, `${c.label}: same detail on both routes`);
    }

    const foreignDetail = details.get("another organization's document") ?? '';
    const missingDetail = details.get('a random UUID') ?? '';
    t.equal(foreignDetail, `Document ${foreign.id} does not exist`, 'foreign document: the detail says only that it does not exist');
    t.equal(foreignDetail.replace(foreign.id, '<id>'), missingDetail.replace(missingId, '<id>'), 'foreign document: indistinguishable from a missing one');
    for (const leak of [a.otherOrgId, 'x-cust', 'secret-diagnosis', 'organization', 'org']) {
      t.notOk(foreignDetail.toLowerCase().includes(leak.toLowerCase()), `foreign document: the detail does not mention ${leak}`);
    }

    // Schema limits.
    const threadsBefore = await threadCount();
    const messagesBefore = await messageCount();
    const twice = [{ documentId: s.libPublic.id }, { documentId: s.libPublic.id }];
    const dupThread = assertProblem(t, await newThread(twice), 400, 'validation_failed', 'POST /v1/threads with the same document twice');
    t.match(String(dupThread.detail), /duplicate/i, 'duplicate: the detail names the uniqueItems rule');
    assertProblem(t, await send(twice), 400, 'validation_failed', 'POST messages with the same document twice');
    const eleven = Array.from({ length: 11 }, () => ({ documentId: randomUUID() }));
    const tooMany = assertProblem(t, await newThread(eleven), 400, 'validation_failed', 'POST /v1/threads with 11 attachments');
    t.match(String(tooMany.detail), /10/, '11 attachments: the detail names the maxItems limit');
    assertProblem(t, await send(eleven), 400, 'validation_failed', 'POST messages with 11 attachments');
    t.equal(await threadCount(), threadsBefore, 'schema refusals: thread count unchanged');
    t.equal(await messageCount(), messagesBefore, 'schema refusals: message count unchanged');
  });

  await t.test('an attached record document is referenced, never copied', async (t) => {
    const listDocs = async () => {
      const res = await h.call('GET', '/v1/customers/c-own/documents?limit=200', a.staff);
      t.equal(res.statusCode, 200, `GET c-own/documents${why(res, 200)}`);
      return json<{ items: DocumentJson[] }>(res).items.map((d) => d.id);
    };
    const usage = async () => {
      const res = await h.call('GET', '/v1/storage/usage', a.staff);
      t.equal(res.statusCode, 200, `GET storage/usage${why(res, 200)}`);
      return json<{ documentCount: number; usedBytes: number }>(res);
    };
    const docsBefore = await listDocs();
    const usageBefore = await usage();
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const res = await send([{ documentId: s.docA.id }]);
      t.equal(res.statusCode, 201, `attach docA again (${i + 1})${why(res, 201)}`);
      if (res.statusCode === 201) {
        const message = json<MessageJson>(res);
        t.same(message.attachments, [expectAttachment(s.docA)], `attach docA again (${i + 1}): the same document`);
        ids.push(message.id);
        attached.push({ messageId: message.id, documentId: s.docA.id });
      }
    }
    const docsAfter = await listDocs();
    const usageAfter = await usage();
    t.equal(docsAfter.length, docsBefore.length, "the customer's document count is unchanged");
    t.same(docsAfter, docsBefore, "the customer's repository lists the same documents");
    t.equal(usageAfter.documentCount, usageBefore.documentCount, 'storage documentCount is unchanged');
    t.equal(usageAfter.usedBytes, usageBefore.usedBytes, 'storage usedBytes is unchanged');

    const listed = await h.call('GET', `${messagesUrl}?limit=200`, a.staff);
    const messages = json<{ items: MessageJson[] }>(listed).items;
    for (const id of [s.firstMessage.id, ...ids]) {
      const m = messages.find((x) => x.id === id);
      t.same(m?.attachments.map((x) => x.id), [s.docA.id, ...(id === s.firstMessage.id ? [s.libPublic.id] : [])], `message ${id} lists docA by its id`);
    }
  });

  await t.test('a patron attaches only what it uploaded itself', async (t) => {
    const up = await upload(h, '/v1/customers/c-own/documents', a.patronWith, 'my-reply.pdf', pdfWith('patron'));
    t.equal(up.statusCode, 201, `patron uploads to its own record${why(up, 201)}`);
    const own = json<DocumentJson>(up);
    const reply = await send([{ documentId: own.id }], a.patronWith);
    t.equal(reply.statusCode, 201, `patron replies with its own upload${why(reply, 201)}`);
    if (reply.statusCode === 201) {
      const message = json<MessageJson>(reply);
      t.same(message.attachments, [expectAttachment(own)], 'the reply lists the patron upload');
      attached.push({ messageId: message.id, documentId: own.id });
    }
    const before = await messageCount();
    assertProblem(t, await send([{ documentId: s.docA.id }], a.patronWith), 422, 'attachment_not_allowed', 'patron attaches docA (uploaded by staff)');
    assertProblem(t, await send([{ documentId: s.libPublic.id }], a.patronWith), 422, 'attachment_not_allowed', 'patron attaches libPublic');
    assertProblem(t, await send([{ documentId: s.libPrivate.id }], a.patronWith), 422, 'attachment_private', 'patron attaches libPrivate');
    assertProblem(t, await send([{ documentId: s.docOther.id }], a.patronWith), 422, 'attachment_wrong_record', 'patron attaches docOther');
    t.equal(await messageCount(), before, 'patron refusals: message count unchanged');
  });

  await t.test('audit: each successful attach is an attachment.attached event', async (t) => {
    const res = await h.call('GET', '/v1/audit-events?action=attachment.attached&limit=200', a.admin);
    t.equal(res.statusCode, 200, `GET audit-events?action=attachment.attached${why(res, 200)}`);
    const events = json<{ items: AuditEventJson[] }>(res).items;
    t.ok(events.every((e) => e.action === 'attachment.attached' && e.outcome === 'success'), 'only successful attachment.attached events');
    const key = (x: { messageId: string | null; documentId: string | null }) => `${x.messageId}/${x.documentId}`;
    t.same(events.map(key).sort(), attached.map(key).sort(), 'one event per successful attach, naming messageId and documentId');
    t.ok(events.every((e) => e.threadId !== null), 'every event names its thread');

    // Refused sends rolled back their message.sent event along with the message.
    const sent = await h.call('GET', `/v1/audit-events?action=message.sent&threadId=${s.threadId}&limit=200`, a.admin);
    t.equal(sent.statusCode, 200, `GET audit-events?action=message.sent${why(sent, 200)}`);
    const sentEvents = json<{ items: AuditEventJson[] }>(sent).items.filter((e) => e.outcome === 'success');
    t.equal(sentEvents.length, await messageCount(), 'one successful message.sent event per stored message: refusals left no event');
  });
});
