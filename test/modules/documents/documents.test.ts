/**
 * Document Storage acceptance: byte-exact round trips at the chunk and size boundaries, the
 * 25 MiB cap, the content-type table, tamper detection on stored chunks, no plaintext in the
 * database, the storage quota and retention, and that nothing remains after any refusal.
 */
import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { sql } from 'drizzle-orm';
import type { LightMyRequestResponse } from 'fastify';
import { get } from 'node:http';
import { connect } from 'node:net';
import { build, fakeClock, type Harness } from '../../fixtures/build.js';
import { fileUpload } from '../../fixtures/multipart.js';
import { assertProblem } from '../../fixtures/problems.js';
import { dumpAllTables, findMarkers } from '../../fixtures/raw-tables.js';
import { rowsOf } from '../../../src/db/util.js';
import * as f from '../../fixtures/files.js';

const MiB = 1024 * 1024;
const CAP = 26_214_400;

async function upload(h: Harness, url: string, filename: string, bytes: Buffer, fields: Record<string, string> = {}, token = h.staff()) {
  const body = fileUpload(filename, bytes, fields);
  return h.app.inject({ method: 'POST', url, headers: { ...body.headers, authorization: `Bearer ${token}` }, payload: body.payload });
}

/** A PDF of exactly `size` bytes (a PDF header, then random bytes). */
function pdfOfSize(size: number): Buffer {
  const head = Buffer.from('%PDF-1.7\n%\xe2\xe3\xcf\xd3\n', 'latin1');
  if (size <= head.length) return head.subarray(0, size);
  return Buffer.concat([head, randomBytes(size - head.length)]);
}

/** Everything stored for the org: document rows, chunk rows, usage. */
async function storedState(h: Harness) {
  const { db } = h.app.database;
  const [docs] = rowsOf<{ n: number }>(await db.execute(sql`select count(*)::int as n from documents where org_id = ${h.orgId}`));
  const [chunks] = rowsOf<{ n: number }>(await db.execute(sql`select count(*)::int as n from document_chunks where org_id = ${h.orgId}`));
  const usage = (await h.call('GET', '/v1/storage/usage', h.staff())).json();
  return { documents: docs!.n, chunks: chunks!.n, usedBytes: usage.usedBytes as number, documentCount: usage.documentCount as number };
}

async function nothingLeftBehind(t: Test, h: Harness, before: Awaited<ReturnType<typeof storedState>>, label: string) {
  t.same(await storedState(h), before, `${label}: no document row, no chunk, usage unchanged`);
}

/** GET over a socket, collecting whatever arrives before the server ends or cuts the response. */
function rawGet(url: string, token: string): Promise<{ status: number; contentLength: number; body: Buffer; aborted: boolean }> {
  return new Promise((resolve, reject) => {
    const req = get(url, { headers: { authorization: `Bearer ${token}` } }, (res) => {
      const parts: Buffer[] = [];
      let aborted = false;
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('aborted', () => (aborted = true));
      res.on('error', () => (aborted = true));
      res.on('close', () =>
        resolve({ status: res.statusCode ?? 0, contentLength: Number(res.headers['content-length']), body: Buffer.concat(parts), aborted: aborted || !res.complete }),
      );
    });
    req.on('error', reject);
  });
}

t.test('round trips are byte-exact at every boundary, up to exactly 25 MiB', async (t) => {
  const h = await build(t);
  await h.call('PUT', '/v1/customers/c-1', h.integration(), { displayName: 'Ada' });
  const files: [string, Buffer][] = [
    ['empty.txt', Buffer.alloc(0)],
    ['one.txt', Buffer.from('a')],
    ['64k-minus-1.pdf', pdfOfSize(64 * 1024 - 1)],
    ['64k.pdf', pdfOfSize(64 * 1024)],
    ['64k-plus-1.pdf', pdfOfSize(64 * 1024 + 1)],
    ['1mib.pdf', pdfOfSize(MiB)],
    ['cap.pdf', pdfOfSize(CAP)],
  ];
  for (const [name, bytes] of files) {
    const res = await upload(h, '/v1/customers/c-1/documents', name, bytes);
    t.equal(res.statusCode, 201, `${name} (${bytes.length} bytes) is stored`);
    const doc = res.json();
    t.equal(doc.size, bytes.length);
    t.equal(doc.name, name);
    const down = await h.call('GET', `/v1/documents/${doc.id}/content`, h.staff());
    t.equal(down.statusCode, 200);
    t.equal(down.rawPayload.length, bytes.length, `${name}: the same length comes back`);
    t.ok(down.rawPayload.equals(bytes), `${name}: byte for byte`);
    t.equal(down.headers['content-length'], String(bytes.length));
  }
  const chunkCounts = rowsOf<{ name: string; chunk_count: number }>(
    await h.app.database.db.execute(sql`select chunk_count from documents where org_id = ${h.orgId} order by id`),
  ).map((r) => r.chunk_count);
  t.same(chunkCounts, [1, 1, 1, 1, 2, 16, 400], 'chunking: 64 KiB plaintext per chunk, an empty file is one final chunk');
});

t.test('one byte over 25 MiB is 413 and leaves nothing behind', async (t) => {
  const h = await build(t);
  await h.call('PUT', '/v1/customers/c-1', h.integration(), { displayName: 'Ada' });
  const before = await storedState(h);
  const res = await upload(h, '/v1/customers/c-1/documents', 'big.pdf', pdfOfSize(CAP + 1));
  assertProblem(t, res, 413, 'payload_too_large', '26,214,401 bytes');
  t.match(res.json().detail, /26,214,400/);
  await nothingLeftBehind(t, h, before, 'after 413');
  const audit = await h.call('GET', '/v1/audit-events?action=document.created&outcome=denied', h.admin());
  t.equal(audit.json().items[0]?.reason, 'payload_too_large', 'the refusal is audited with its reason');
});

t.test('the type table: judged by content, never by name', async (t) => {
  const h = await build(t);
  await h.call('PUT', '/v1/customers/c-1', h.integration(), { displayName: 'Ada' });
  const accepted: [string, Buffer, string][] = [
    ['a.pdf', f.pdf(), 'application/pdf'],
    ['a.png', f.png(), 'image/png'],
    ['a.jpg', f.jpeg(), 'image/jpeg'],
    ['a.docx', f.docx(), 'application/vnd.openxmlformats-officedocument.wordprocessingml.document'],
    ['a.xlsx', f.xlsx(), 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet'],
    ['a.pptx', f.pptx(), 'application/vnd.openxmlformats-officedocument.presentationml.presentation'],
    ['a.odt', f.odt(), 'application/vnd.oasis.opendocument.text'],
    ['a.ods', f.ods(), 'application/vnd.oasis.opendocument.spreadsheet'],
    ['a.doc', f.cfb(), 'application/x-ole-storage'],
    ['a.txt', f.utf8Text(), 'text/plain; charset=utf-8'],
    ['a.csv', f.csv(), 'text/csv; charset=utf-8'],
  ];
  for (const [name, bytes, mediaType] of accepted) {
    const res = await upload(h, '/v1/customers/c-1/documents', name, bytes);
    t.equal(res.statusCode, 201, `${name} is accepted`);
    t.equal(res.json().mediaType, mediaType, `${name} is ${mediaType}`);
  }
  const before = await storedState(h);
  const refused: [string, Buffer][] = [
    ['a.zip', f.plainZip()],
    ['renamed.docx', f.plainZip()],
    ['renamed.pdf', f.docx()],
    ['a.jar', f.jar()],
    ['a.epub', f.epub()],
    ['a.7z', f.sevenZip()],
    ['setup.exe', f.peExe()],
    ['macro.docm', f.docm()],
    ['page.html', f.html()],
    ['bomb.zip', f.zipBomb()],
  ];
  for (const [name, bytes] of refused) {
    const res = await upload(h, '/v1/customers/c-1/documents', name, bytes);
    assertProblem(t, res, 415, 'unsupported_media_type', name);
    t.match(res.json().detail, /Allowed: PDF, images/, `${name}: the answer names what is allowed`);
  }
  t.ok(f.zipBomb().length < 10_000, 'the bomb is a small file declaring gigabytes');
  await nothingLeftBehind(t, h, before, 'after the refusals');
});

t.test('tampered chunks never pass as good content', async (t) => {
  const h = await build(t);
  await h.call('PUT', '/v1/customers/c-1', h.integration(), { displayName: 'Ada' });
  const { db } = h.app.database;
  const bytes = pdfOfSize(5 * 64 * 1024 + 100); // six chunks
  const fresh = async () => (await upload(h, '/v1/customers/c-1/documents', 'scan.pdf', bytes)).json().id as string;
  const download = (id: string) => h.call('GET', `/v1/documents/${id}/content`, h.staff());
  // A real socket, so a response cut mid-body can be observed as a client sees it.
  const base = await h.app.listen({ port: 0, host: '127.0.0.1' });
  const overHttp = (id: string) => rawGet(`${base}/v1/documents/${id}/content`, h.staff());
  const generic500 = (res: LightMyRequestResponse, label: string) => {
    assertProblem(t, res, 500, 'internal_error', label);
    t.notOk(res.body.includes('%PDF'), `${label}: no content in the error`);
  };
  const cutShort = async (id: string, label: string) => {
    // Headers went out before the bad chunk was read: the connection is cut short of
    // Content-Length, and what was sent is a prefix of the real file (every sent chunk was
    // authenticated before it left).
    const res = await overHttp(id);
    t.equal(res.status, 200, `${label}: the response had started`);
    t.equal(res.contentLength, bytes.length, `${label}: Content-Length announced the full size`);
    t.ok(res.aborted, `${label}: the connection was cut`);
    t.ok(res.body.length < bytes.length, `${label}: the body is short (${res.body.length} < ${bytes.length})`);
    t.ok(bytes.subarray(0, res.body.length).equals(res.body), `${label}: only authenticated plaintext was sent`);
  };

  const a = await fresh();
  await db.execute(sql`update document_chunks set data = set_byte(data, 10, get_byte(data, 10) # 1) where document_id = ${a} and idx = 0`);
  generic500(await download(a), 'flipped byte in the first chunk');

  const b = await fresh();
  await db.execute(sql`update document_chunks set data = set_byte(data, 10, get_byte(data, 10) # 1) where document_id = ${b} and idx = 3`);
  await cutShort(b, 'flipped byte in a later chunk');

  const c = await fresh();
  await db.execute(sql`delete from document_chunks where document_id = ${c} and idx = 5`);
  await cutShort(c, 'dropped last chunk');

  const d = await fresh();
  await db.execute(sql`update document_chunks c set data = o.data from document_chunks o
    where c.document_id = ${d} and o.document_id = ${d} and ((c.idx = 1 and o.idx = 2) or (c.idx = 2 and o.idx = 1))`);
  await cutShort(d, 'two swapped chunks');

  const e = await fresh();
  const donor = await fresh();
  await db.execute(
    sql`update document_chunks set data = (select data from document_chunks where document_id = ${donor} and idx = 2) where document_id = ${e} and idx = 2`,
  );
  await cutShort(e, 'a chunk moved from another document');

  const g = await fresh();
  await db.execute(sql`update documents set chunk_count = 5 where id = ${g}`);
  await cutShort(g, 'a chunk count shortened to hide the tail');

  t.equal((await download(donor)).rawPayload.equals(bytes), true, 'an untouched document still downloads');
  const audit = await h.call('GET', '/v1/audit-events?action=integrity.failed&limit=50', h.admin());
  t.same(new Set(audit.json().items.map((e: { documentId: string }) => e.documentId)), new Set([a, b, c, d, e, g]), 'every failure is audited');
});

t.test('no file content or record-document name is stored in the clear, or logged', async (t) => {
  const h = await build(t, { captureLogs: true });
  await h.call('PUT', '/v1/customers/c-1', h.integration(), { displayName: 'Ada' });
  const marker = `MARKER-${randomBytes(8).toString('hex')}`;
  const secretName = `hiv-results-${randomBytes(4).toString('hex')}.txt`;
  const text = Buffer.from(`Lab results\n${marker}\n`.repeat(5000));
  t.equal((await upload(h, '/v1/customers/c-1/documents', secretName, text)).statusCode, 201);
  const down = await h.call('GET', `/v1/customers/c-1/documents?q=${secretName.slice(0, 12)}`, h.staff());
  t.equal(down.json().items.length, 1, 'record names are searchable through the API');
  const dump = await dumpAllTables(h.app.database);
  t.ok((dump.get('document_chunks') ?? []).length > 0, 'the dump read the chunks');
  t.same(findMarkers(dump, [marker, secretName, 'Lab results']), []);
  const logs = h.logs.join('');
  t.match(logs, /documents\?q=…/, 'the search was logged, without its value');
  for (const secret of [marker, secretName, secretName.slice(0, 12)]) t.notOk(logs.includes(secret), `logs do not contain ${secret}`);
});

t.test('the storage allocation: the upload that would cross it is refused, usage unchanged', async (t) => {
  const h = await build(t);
  await h.call('PUT', '/v1/customers/c-1', h.integration(), { displayName: 'Ada' });
  const patch = await h.call('PATCH', '/v1/settings', h.admin(), { storageAllocationBytes: 300_000 });
  t.equal(patch.statusCode, 200);
  t.equal((await upload(h, '/v1/customers/c-1/documents', 'a.pdf', pdfOfSize(200_000))).statusCode, 201);
  const usage = (await h.call('GET', '/v1/storage/usage', h.staff())).json();
  t.equal(usage.usedBytes, 200_000 + 4 * 16, 'usage counts every stored byte (4 chunks, a 16-byte tag each)');
  const before = await storedState(h);
  const over = await upload(h, '/v1/customers/c-1/documents', 'b.pdf', pdfOfSize(150_000));
  assertProblem(t, over, 413, 'storage_quota_exceeded', 'over the allocation');
  await nothingLeftBehind(t, h, before, 'after the quota refusal');
  t.equal((await upload(h, '/v1/library/documents', 'small.txt', Buffer.from('fits'))).statusCode, 201, 'a file that fits still goes in');
});

t.test('retention: deletion is refused before the date; after it, content and key are shredded', async (t) => {
  const clock = fakeClock();
  const h = await build(t, { clock });
  await h.call('PUT', '/v1/customers/c-1', h.integration(), { displayName: 'Ada' });
  const settings = await h.call('PATCH', '/v1/settings', h.admin(), { retentionYears: 6 });
  t.equal(settings.json().retentionYears, 6);
  const doc = (await upload(h, '/v1/customers/c-1/documents', 'consent.pdf', pdfOfSize(100_000))).json();
  t.equal(doc.retentionUntil, '2032-06-01T12:00:00.000Z', 'retention = created + the org period');
  const early = await h.call('DELETE', `/v1/documents/${doc.id}`, h.staff());
  assertProblem(t, early, 409, 'retention_period_active', 'before retention');
  t.equal((await h.call('GET', `/v1/documents/${doc.id}/content`, h.staff())).statusCode, 200, 'still downloadable');

  clock.advance(6 * 366 * 24 * 3600 * 1000);
  const usageBefore = (await h.call('GET', '/v1/storage/usage', h.staff())).json();
  const removed = await h.call('DELETE', `/v1/documents/${doc.id}`, h.staff());
  t.equal(removed.statusCode, 200);
  t.ok(removed.json().deletedAt);
  const { db } = h.app.database;
  const [row] = rowsOf<{ wrapped: number; name: unknown; chunks: number }>(
    await db.execute(
      sql`select length(wrapped_key) as wrapped, name_sealed as name, (select count(*)::int from document_chunks where document_id = ${doc.id}) as chunks from documents where id = ${doc.id}`,
    ),
  );
  t.same(row, { wrapped: 0, name: null, chunks: 0 }, 'the key, the sealed name and the content are gone');
  assertProblem(t, await h.call('GET', `/v1/documents/${doc.id}/content`, h.staff()), 410, 'document_deleted', 'content after shredding');
  const meta = await h.call('GET', `/v1/documents/${doc.id}`, h.staff());
  t.equal(meta.statusCode, 200, 'metadata stays');
  t.equal(meta.json().size, 100_000);
  const usageAfter = (await h.call('GET', '/v1/storage/usage', h.staff())).json();
  t.equal(usageAfter.usedBytes, usageBefore.usedBytes - (100_000 + 2 * 16), 'usage is released');
  const events = (await h.call(`GET`, `/v1/audit-events?limit=200`, h.admin())).json().items.filter((e: { documentId: string }) => e.documentId === doc.id);
  t.same(events.map((e: { action: string; outcome: string }) => `${e.action}:${e.outcome}`), [
    'document.created:success',
    'document.deleted:denied',
    'document.downloaded:success',
    'document.deleted:success',
    'document.viewed:success',
  ]);
  t.equal((await h.call('GET', '/v1/audit-events/verify', h.admin())).json().valid, true, 'the audit trail still verifies');
});

t.test('an upload cut off mid-stream leaves nothing; crash leftovers are swept', async (t) => {
  const h = await build(t);
  await h.call('PUT', '/v1/customers/c-1', h.integration(), { displayName: 'Ada' });
  const before = await storedState(h);
  const base = await h.app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = new URL(base);
  await new Promise<void>((resolve) => {
    const socket = connect(Number(port), '127.0.0.1', () => {
      const boundary = 'cutoff';
      const head =
        `POST /v1/customers/c-1/documents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${h.staff()}\r\n` +
        `Content-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: 5000000\r\n\r\n` +
        `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="half.pdf"\r\n\r\n%PDF-1.7\n`;
      socket.write(head);
      socket.write(randomBytes(300_000), () => setTimeout(() => socket.destroy(), 200));
    });
    socket.on('close', () => resolve());
    socket.on('error', () => undefined);
  });
  for (let i = 0; i < 50; i++) {
    const now = await storedState(h);
    if (now.documents === before.documents && now.chunks === before.chunks) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await nothingLeftBehind(t, h, before, 'after a dropped connection');

  const doc = (await upload(h, '/v1/customers/c-1/documents', 'a.pdf', pdfOfSize(200_000))).json();
  const { db } = h.app.database;
  await db.execute(sql`update documents set status = 'pending', created_at = created_at - interval '2 hours' where id = ${doc.id}`);
  t.equal((await h.call('GET', `/v1/documents/${doc.id}`, h.staff())).statusCode, 404, 'a pending upload is invisible');
  t.equal(await h.app.documents.sweepPendingUploads(), 1, 'the sweeper removes a pending upload older than an hour');
  const [left] = rowsOf<{ docs: number; chunks: number }>(
    await db.execute(sql`select (select count(*)::int from documents where id = ${doc.id}) as docs, (select count(*)::int from document_chunks where document_id = ${doc.id}) as chunks`),
  );
  t.same(left, { docs: 0, chunks: 0 });
});
