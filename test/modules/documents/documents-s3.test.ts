/**
 * The S3 blob store (BLOB_STORE=s3://bucket) against s3rver, a local S3 started in-process for
 * this file: the whole Document Storage suite (test/fixtures/document-suite.ts) with each test
 * in a bucket of its own, its tampering steps applied to the document's object, then what only
 * S3 has: the object layout, multipart uploads that must never be left behind, the orphan
 * sweeper, and a 25 MiB round trip in several parts.
 */
import t, { type Test } from 'tap';
import { randomBytes, randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { CreateMultipartUploadCommand, DeleteObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import type { S3BlobStoreConfig } from '../../../src/config.js';
import { rowsOf } from '../../../src/db/util.js';
import { objectKey, PART_CHUNKS, SEALED_CHUNK_BYTES } from '../../../src/modules/documents/s3-blob-store.js';
import { build, type Harness } from '../../fixtures/build.js';
import { CAP, documentSuite, dropMidUpload, pdfOfSize, type ContentProbe } from '../../fixtures/document-suite.js';
import { fileUpload } from '../../fixtures/multipart.js';
import { assertProblem } from '../../fixtures/problems.js';
import { startLocalS3 } from '../../fixtures/s3.js';

// Every upload and download crosses a second HTTP server here: more time than tap's default.
t.setTimeout(600_000);

const s3 = await startLocalS3(t);
const MiB = 1024 * 1024;
const HOUR = 3_600_000;

const bucketOf = (h: Harness) => (h.config.blobStore as S3BlobStoreConfig).bucket;
const keyOf = (h: Harness, documentId: string) => objectKey({ orgId: h.orgId, documentId });
const orgPrefix = (h: Harness) => keyOf(h, '');

async function chunkRows(h: Harness, where: { org: string } | { document: string }): Promise<number> {
  const filter = 'org' in where ? sql`org_id = ${where.org}` : sql`document_id = ${where.document}`;
  const [row] = rowsOf<{ n: number }>(await h.app.database.db.execute(sql`select count(*)::int as n from document_chunks where ${filter}`));
  return row!.n;
}

/** The object cut into its sealed chunks (chunk i at byte i × 65,552). */
async function objectChunks(h: Harness, documentId: string): Promise<Buffer[]> {
  const body = await s3.get(bucketOf(h), keyOf(h, documentId));
  const chunks: Buffer[] = [];
  for (let at = 0; at < body.length; at += SEALED_CHUNK_BYTES) chunks.push(Buffer.from(body.subarray(at, at + SEALED_CHUNK_BYTES)));
  return chunks;
}

async function putObjectChunks(h: Harness, documentId: string, chunks: Buffer[]) {
  await s3.client.send(new PutObjectCommand({ Bucket: bucketOf(h), Key: keyOf(h, documentId), Body: Buffer.concat(chunks) }));
}

/** Content in S3: objects and unfinished multipart uploads; chunk rows are counted too (there must be none). */
const s3Content: ContentProbe = {
  label: 'S3',
  async count(h) {
    const objects = await s3.objects(bucketOf(h), orgPrefix(h));
    const uploads = await s3.uploads(bucketOf(h), orgPrefix(h));
    return objects.length + uploads.length + (await chunkRows(h, { org: h.orgId }));
  },
  async countOf(h, id) {
    const object = (await s3.exists(bucketOf(h), keyOf(h, id))) ? 1 : 0;
    const uploads = await s3.uploads(bucketOf(h), keyOf(h, id));
    return object + uploads.length + (await chunkRows(h, { document: id }));
  },
  async flipByte(h, id, idx, offset) {
    const chunks = await objectChunks(h, id);
    chunks[idx]![offset]! ^= 1;
    await putObjectChunks(h, id, chunks);
  },
  async dropChunk(h, id, idx) {
    const chunks = await objectChunks(h, id);
    chunks.splice(idx, 1);
    await putObjectChunks(h, id, chunks);
  },
  async swapChunks(h, id, a, b) {
    const chunks = await objectChunks(h, id);
    [chunks[a], chunks[b]] = [chunks[b]!, chunks[a]!];
    await putObjectChunks(h, id, chunks);
  },
  async copyChunk(h, donor, id, idx) {
    const chunks = await objectChunks(h, id);
    chunks[idx] = (await objectChunks(h, donor))[idx]!;
    await putObjectChunks(h, id, chunks);
  },
  async rawContent(h) {
    // Every object of the test's bucket: its key, its metadata and its bytes (as latin1 text, so
    // a marker stored in the clear would be found as is).
    const rows: string[] = [];
    for (const { key } of await s3.objects(bucketOf(h))) {
      const head = await s3.client.send(new HeadObjectCommand({ Bucket: bucketOf(h), Key: key }));
      rows.push(key, JSON.stringify(head.Metadata ?? {}), (await s3.get(bucketOf(h), key)).toString('latin1'));
    }
    return { where: `s3://${bucketOf(h)}`, rows };
  },
};

documentSuite(t, { store: s3Content, options: async () => ({ env: s3.env(await s3.bucket()) }) });

async function s3Harness(t: Test) {
  const h = await build(t, { env: s3.env(await s3.bucket()), expectServerErrors: true });
  await h.call('PUT', '/v1/customers/c-1', h.integration(), { displayName: 'Ada' });
  return h;
}

function upload(h: Harness, name: string, bytes: Buffer) {
  const body = fileUpload(name, bytes);
  return h.app.inject({ method: 'POST', url: '/v1/customers/c-1/documents', headers: { ...body.headers, authorization: `Bearer ${h.staff()}` }, payload: body.payload });
}

/** What the org has in storage, S3 and database alike. */
async function everything(h: Harness) {
  const [docs] = rowsOf<{ n: number }>(await h.app.database.db.execute(sql`select count(*)::int as n from documents where org_id = ${h.orgId}`));
  return {
    documents: docs!.n,
    objects: (await s3.objects(bucketOf(h))).map((o) => o.key),
    uploads: (await s3.uploads(bucketOf(h))).map((u) => u.key),
    chunkRows: await chunkRows(h, { org: h.orgId }),
  };
}
const EMPTY = { documents: 0, objects: [], uploads: [], chunkRows: 0 };

t.test('S3: one object per document, the sealed chunks back to back', async (t) => {
  const h = await s3Harness(t);
  const small = (await upload(h, 'note.pdf', pdfOfSize(200_000))).json();
  const empty = (await upload(h, 'empty.txt', Buffer.alloc(0))).json();
  const objects = await s3.objects(bucketOf(h));
  t.same(objects.map((o) => o.key).sort(), [keyOf(h, small.id), keyOf(h, empty.id)].sort(), 'keys are <orgId>/<documentId>');
  // stored_bytes is a bigint: postgres.js gives it as a string, PGlite as a number.
  const [row] = rowsOf<{ stored_bytes: number }>(
    await h.app.database.db.execute(sql`select stored_bytes::int as stored_bytes from documents where id = ${small.id}`),
  );
  t.equal(objects.find((o) => o.key === keyOf(h, small.id))!.size, row!.stored_bytes, 'the object size is the stored size');
  t.equal(row!.stored_bytes, 200_000 + 4 * 16, 'four chunks, a 16-byte tag each, nothing else');
  t.equal(objects.find((o) => o.key === keyOf(h, empty.id))!.size, 16, 'an empty file is one sealed empty chunk: a 16-byte object');
  const head = await s3.client.send(new HeadObjectCommand({ Bucket: bucketOf(h), Key: keyOf(h, small.id) }));
  t.equal(head.Metadata?.['sealed-chunk-bytes'], String(SEALED_CHUNK_BYTES), 'the chunk size is recorded on the object');
  t.equal(await chunkRows(h, { org: h.orgId }), 0, 'no chunk rows in the database');
  const down = await h.call('GET', `/v1/documents/${empty.id}/content`, h.staff());
  t.equal(down.statusCode, 200);
  t.equal(down.rawPayload.length, 0, 'the empty file downloads as zero bytes');

  await s3.client.send(new PutObjectCommand({ Bucket: bucketOf(h), Key: keyOf(h, small.id), Body: Buffer.alloc(0) }));
  assertProblem(t, await h.call('GET', `/v1/documents/${small.id}/content`, h.staff()), 500, 'internal_error', 'an object emptied behind our back');
  const gone = (await upload(h, 'gone.pdf', pdfOfSize(70_000))).json();
  await s3.client.send(new DeleteObjectCommand({ Bucket: bucketOf(h), Key: keyOf(h, gone.id) }));
  assertProblem(t, await h.call('GET', `/v1/documents/${gone.id}/content`, h.staff()), 500, 'internal_error', 'a missing object');
  const audit = await h.call('GET', '/v1/audit-events?action=integrity.failed', h.admin());
  t.same(new Set(audit.json().items.map((e: { documentId: string }) => e.documentId)), new Set([small.id, gone.id]), 'both are audited as integrity failures');
});

t.test('S3: a failed upload leaves no object and no multipart upload in progress', async (t) => {
  const h = await s3Harness(t);
  const size = 12 * MiB; // three parts

  await t.test('S3 refuses a part: the multipart upload is aborted', async (t) => {
    const seen = s3.partsSeen.length;
    s3.faults.uploadPart = (n) => n === 2;
    t.teardown(() => delete s3.faults.uploadPart);
    const res = await upload(h, 'flaky.pdf', pdfOfSize(size));
    assertProblem(t, res, 500, 'internal_error', 'a failing S3');
    t.ok(
      s3.partsSeen.slice(seen).some((p) => p.partNumber === 1),
      'the multipart upload had begun (part 1 was stored)',
    );
    t.same(await everything(h), EMPTY, 'no row, no object, no upload in progress');
  });

  await t.test('the client drops the connection mid-file: the multipart upload is aborted', async (t) => {
    const seen = s3.partsSeen.length;
    const base = await h.app.listen({ port: 0, host: '127.0.0.1' });
    await dropMidUpload(base, h.staff(), randomBytes(size), size + 5 * MiB);
    let now = await everything(h);
    for (let i = 0; i < 100 && JSON.stringify(now) !== JSON.stringify(EMPTY); i++) {
      await new Promise((r) => setTimeout(r, 100));
      now = await everything(h);
    }
    t.ok(s3.partsSeen.length > seen, `the multipart upload had begun (${s3.partsSeen.length - seen} parts sent)`);
    t.same(now, EMPTY, 'no row, no object, no upload in progress');
  });

  await t.test('the final transaction refuses (over the allocation): the completed object is deleted', async (t) => {
    const patch = await h.call('PATCH', '/v1/settings', h.admin(), { storageAllocationBytes: 6 * MiB });
    t.equal(patch.statusCode, 200);
    const seen = s3.partsSeen.length;
    const res = await upload(h, 'big.pdf', pdfOfSize(8 * MiB));
    assertProblem(t, res, 413, 'storage_quota_exceeded', 'over the allocation');
    t.same(
      s3.partsSeen.slice(seen).map((p) => p.partNumber),
      [1, 2],
      'the object was complete (two parts) before the final transaction ran',
    );
    t.same(await everything(h), EMPTY, 'no row, no object, no upload in progress');
  });
});

t.test('S3: orphans older than an hour are swept; young ones, ready documents and foreign objects stay', async (t) => {
  const h = await s3Harness(t);
  const bucket = bucketOf(h);
  const old = new Date(Date.now() - 2 * HOUR);
  const put = async (key: string, body = randomBytes(100)) => {
    await s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
    return key;
  };

  const ready = (await upload(h, 'kept.pdf', pdfOfSize(100_000))).json();
  await s3.backdateObject(bucket, keyOf(h, ready.id), old);
  const shredded = (await upload(h, 'shredded.pdf', pdfOfSize(100_000))).json();
  await h.app.database.db.execute(sql`update documents set deleted_at = now(), wrapped_key = '' where id = ${shredded.id}`);
  await s3.backdateObject(bucket, keyOf(h, shredded.id), old);
  const pendingDoc = (await upload(h, 'pending.pdf', pdfOfSize(100_000))).json();
  // A row still pending but young (as if its final transaction were running): the sweeper of
  // pending rows leaves it, and so must the orphan sweeper while the object is young.
  await h.app.database.db.execute(sql`update documents set status = 'pending' where id = ${pendingDoc.id}`);
  const oldOrphan = await put(keyOf(h, randomUUID()));
  await s3.backdateObject(bucket, oldOrphan, old);
  const otherOrgOrphan = await put(objectKey({ orgId: `org-${randomUUID()}`, documentId: randomUUID() }));
  await s3.backdateObject(bucket, otherOrgOrphan, old);
  const youngOrphan = await put(keyOf(h, randomUUID()));
  const foreign = await put('exports/report.csv');
  await s3.backdateObject(bucket, foreign, old);

  const staleUpload = await s3.client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: keyOf(h, randomUUID()) }));
  await s3.backdateUpload(bucket, staleUpload.UploadId!, old);
  const youngUpload = await s3.client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: keyOf(h, randomUUID()) }));

  const swept = await h.app.documents.sweepPendingUploads();
  t.equal(swept.orphans, 4, 'two orphans, a shredded document\'s object and a stale multipart upload');
  const objects = (await s3.objects(bucket)).map((o) => o.key).sort();
  t.same(objects, [keyOf(h, ready.id), keyOf(h, pendingDoc.id), youngOrphan, foreign].sort(), 'what is left');
  t.same(
    (await s3.uploads(bucket)).map((u) => u.uploadId),
    [youngUpload.UploadId],
    'the stale multipart upload was aborted, the young one left alone',
  );
  const down = await h.call('GET', `/v1/documents/${ready.id}/content`, h.staff());
  t.equal(down.statusCode, 200, 'the old object of a ready document still downloads');

  t.same(await h.app.documents.sweepPendingUploads().then((r) => r.orphans), 0, 'a second sweep finds nothing');
});

t.test('S3: a 25 MiB file round-trips byte-exact, in five parts of at least 5 MiB', async (t) => {
  const h = await s3Harness(t);
  const bytes = pdfOfSize(CAP);
  const seen = s3.partsSeen.length;
  const started = Date.now();
  const res = await upload(h, 'scan.pdf', bytes);
  const uploadMs = Date.now() - started;
  t.equal(res.statusCode, 201);
  const doc = res.json();
  const parts = s3.partsSeen.slice(seen);
  t.same(
    parts.map((p) => p.partNumber),
    [1, 2, 3, 4, 5],
    'five parts',
  );
  t.ok(
    parts.slice(0, -1).every((p) => p.bytes === PART_CHUNKS * SEALED_CHUNK_BYTES && p.bytes >= 5 * MiB),
    `every part but the last is ${PART_CHUNKS * SEALED_CHUNK_BYTES} bytes (≥ 5 MiB)`,
  );
  const [object] = await s3.objects(bucketOf(h));
  t.equal(object?.size, 400 * SEALED_CHUNK_BYTES, 'one object: 400 sealed chunks');
  const downStarted = Date.now();
  const down = await h.call('GET', `/v1/documents/${doc.id}/content`, h.staff());
  const downloadMs = Date.now() - downStarted;
  t.equal(down.statusCode, 200);
  t.equal(down.rawPayload.length, bytes.length);
  t.ok(down.rawPayload.equals(bytes), 'byte for byte');
  t.comment(`25 MiB through s3rver: upload ${uploadMs} ms, download ${downloadMs} ms`);
});
