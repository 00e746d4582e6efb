/**
 * The S3 blob store (BLOB_STORE=s3://bucket; S3_ENDPOINT for MinIO, Ceph or s3rver): one object
 * per document, written once and never changed.
 *
 * Object layout: key `<orgId URI-encoded>/<documentId>`; the body is the document's sealed
 * chunks back to back, in index order, with nothing between them. The codec (chunked-cipher.ts)
 * cuts the plaintext into 64 KiB pieces and only the final piece may be shorter, so every
 * sealed chunk is exactly SEALED_CHUNK_BYTES (64 KiB + the 16-byte GCM tag = 65,552 bytes)
 * except the last, which is 16 to 65,552 bytes (an empty file is one 16-byte chunk: no object
 * is ever empty). The object size is the document's `storedBytes`; chunk i starts at byte
 * i × 65,552, so `read` needs no index and no length prefixes. `write` refuses any chunk stream
 * that breaks this shape, so a change in the codec cannot silently produce unreadable objects.
 * The metadata `x-amz-meta-sealed-chunk-bytes` records the size for operators.
 *
 * Invariants:
 * - bounded memory: `write` buffers at most one part (80 chunks, 5,244,160 bytes: S3's 5 MiB
 *   minimum for every part but the last) and `read` one window (32 chunks, ~2 MiB), whatever
 *   the file size;
 * - content at most one part long goes up in one PutObject; longer content in a multipart
 *   upload (CreateMultipartUpload, UploadPart, CompleteMultipartUpload). Either way the object
 *   appears only complete: S3 never shows a partial object. Any error aborts the multipart
 *   upload before `write` rejects;
 * - the document row is marked 'ready' only after `write` resolved (DocumentsService), so a
 *   ready row always has its complete object. A refused or broken upload, or a failed final
 *   transaction, removes the object through `remove` (in the transaction that deletes the
 *   pending row);
 * - `sweepOrphans` deletes objects older than its cut-off whose row is missing, not 'ready' or
 *   shredded, and aborts multipart uploads begun before it. It lists the bucket a bounded number
 *   of keys per call, so the bucket must belong to this deployment alone: another database's
 *   objects would look like orphans.
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  type CompletedPart,
} from '@aws-sdk/client-s3';
import { and, eq, inArray, isNull } from 'drizzle-orm';
import type { S3BlobStoreConfig } from '../../config.js';
import type { Db } from '../../db/client.js';
import { documentChunks, documents } from '../../db/schema.js';
import { CHUNK_BYTES, CHUNK_OVERHEAD_BYTES } from '../../lib/crypto/index.js';
import type { BlobRef, BlobStore } from './blob-store.js';

/** Every sealed chunk but the last is exactly this long. */
export const SEALED_CHUNK_BYTES = CHUNK_BYTES + CHUNK_OVERHEAD_BYTES;
/** Chunks per uploaded part: 80 × 65,552 = 5,244,160 bytes, just over S3's 5 MiB part minimum. */
export const PART_CHUNKS = 80;
/** Chunks per ranged GET while streaming a download (~2 MiB buffered). */
const READ_WINDOW_CHUNKS = 32;
/** Keys listed per sweep call, at most; the next call continues after the last one. */
const SWEEP_KEYS_PER_CALL = 10_000;
const LIST_PAGE = 1000;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** `<orgId>/<documentId>`; the org id is URI-encoded (and '.' too, so no key segment is "." or ".."). */
export function objectKey(ref: BlobRef): string {
  return `${encodeURIComponent(ref.orgId).replace(/\./g, '%2E')}/${ref.documentId}`;
}

/** The ref a key of this layout names; null for any other key (which the sweeper never touches). */
export function parseObjectKey(key: string): BlobRef | null {
  const slash = key.indexOf('/');
  if (slash <= 0 || key.indexOf('/', slash + 1) !== -1) return null;
  const documentId = key.slice(slash + 1);
  if (!UUID.test(documentId)) return null;
  let orgId: string;
  try {
    orgId = decodeURIComponent(key.slice(0, slash));
  } catch {
    return null;
  }
  const ref = { orgId, documentId };
  return objectKey(ref) === key ? ref : null;
}

export function createS3Client(config: S3BlobStoreConfig): S3Client {
  return new S3Client({
    region: config.region,
    ...(config.endpoint ? { endpoint: config.endpoint } : {}),
    forcePathStyle: config.forcePathStyle,
    ...(config.credentials ? { credentials: config.credentials } : {}),
    // Every chunk is AES-GCM authenticated when it is read, and SigV4 signs each request body's
    // SHA-256, so the SDK's newer default CRC checksums add nothing here; several S3-compatible
    // servers (older MinIO and Ceph releases) refuse them. Send them only where S3 requires one.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: { connectionTimeout: 5_000, requestTimeout: 60_000, throwOnRequestTimeout: true },
  });
}

/** The object (or the upload, or the range) is not there. */
function isMissing(error: unknown): boolean {
  const e = error as { name?: string; Code?: string; $metadata?: { httpStatusCode?: number } };
  return (
    e?.name === 'NoSuchKey' ||
    e?.name === 'NotFound' ||
    e?.name === 'InvalidRange' ||
    e?.$metadata?.httpStatusCode === 404 ||
    e?.$metadata?.httpStatusCode === 416
  );
}

function isNotImplemented(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === 'NotImplemented' || e?.$metadata?.httpStatusCode === 501;
}

/** `bytes 0-2097151/26214416` → 26214416. */
function totalFromContentRange(range: string | undefined): number | undefined {
  const m = range ? /\/(\d+)\s*$/.exec(range) : null;
  return m ? Number(m[1]) : undefined;
}

async function readAll(body: unknown): Promise<Buffer> {
  if (!body) return Buffer.alloc(0);
  const parts: Buffer[] = [];
  for await (const part of body as AsyncIterable<Uint8Array>) parts.push(Buffer.from(part.buffer, part.byteOffset, part.byteLength));
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

export function createS3BlobStore(db: Db, config: S3BlobStoreConfig, client: S3Client = createS3Client(config)): BlobStore {
  const Bucket = config.bucket;
  const Metadata = { 'sealed-chunk-bytes': String(SEALED_CHUNK_BYTES) };
  /** Where the next sweep continues listing (undefined: from the start). */
  let sweepAfter: string | undefined;

  async function abortStaleUploads(olderThan: Date): Promise<number> {
    let aborted = 0;
    let KeyMarker: string | undefined;
    let UploadIdMarker: string | undefined;
    for (;;) {
      let page;
      try {
        page = await client.send(new ListMultipartUploadsCommand({ Bucket, KeyMarker, UploadIdMarker, MaxUploads: LIST_PAGE }));
      } catch (error) {
        // A server without the call (s3rver) cannot leave uploads we could find; a bucket
        // lifecycle rule (AbortIncompleteMultipartUpload) is the other safety net.
        if (isNotImplemented(error)) return aborted;
        throw error;
      }
      for (const upload of page.Uploads ?? []) {
        if (!upload.Key || !upload.UploadId || !upload.Initiated || upload.Initiated >= olderThan) continue;
        if (!parseObjectKey(upload.Key)) continue;
        try {
          await client.send(new AbortMultipartUploadCommand({ Bucket, Key: upload.Key, UploadId: upload.UploadId }));
          aborted++;
        } catch (error) {
          if (!isMissing(error)) throw error;
        }
      }
      if (!page.IsTruncated) return aborted;
      KeyMarker = page.NextKeyMarker;
      UploadIdMarker = page.NextUploadIdMarker;
      if (!KeyMarker && !UploadIdMarker) return aborted;
    }
  }

  /** Deletes, among listed objects older than the cut-off, those no ready document owns. */
  async function deleteOrphans(candidates: { key: string; ref: BlobRef }[]): Promise<number> {
    if (candidates.length === 0) return 0;
    const live = await db
      .select({ id: documents.id, orgId: documents.orgId })
      .from(documents)
      .where(
        and(
          inArray(
            documents.id,
            candidates.map((c) => c.ref.documentId),
          ),
          eq(documents.status, 'ready'),
          isNull(documents.deletedAt),
        ),
      );
    const keep = new Set(live.map((row) => objectKey({ orgId: row.orgId, documentId: row.id })));
    let deleted = 0;
    for (const { key } of candidates) {
      if (keep.has(key)) continue;
      await client.send(new DeleteObjectCommand({ Bucket, Key: key }));
      deleted++;
    }
    return deleted;
  }

  return {
    async write(ref, chunks) {
      const Key = objectKey(ref);
      let part: Buffer[] = [];
      let uploadId: string | undefined;
      const parts: CompletedPart[] = [];
      let chunkCount = 0;
      let storedBytes = 0;
      let lastLength = SEALED_CHUNK_BYTES;

      const takePart = (): Buffer => {
        const body = part.length === 1 ? part[0]! : Buffer.concat(part);
        part = [];
        return body;
      };
      const uploadPart = async () => {
        if (uploadId === undefined) {
          const created = await client.send(new CreateMultipartUploadCommand({ Bucket, Key, Metadata }));
          if (!created.UploadId) throw new Error('S3 CreateMultipartUpload returned no UploadId');
          uploadId = created.UploadId;
        }
        const PartNumber = parts.length + 1;
        const Body = takePart();
        const { ETag } = await client.send(new UploadPartCommand({ Bucket, Key, UploadId: uploadId, PartNumber, Body, ContentLength: Body.length }));
        parts.push({ PartNumber, ETag });
      };

      try {
        for await (const chunk of chunks) {
          if (chunk.idx !== chunkCount) throw new Error(`S3 blob store: chunk ${chunk.idx} arrived where ${chunkCount} was due`);
          if (lastLength !== SEALED_CHUNK_BYTES) throw new Error('S3 blob store: only the last chunk may be shorter than a full sealed chunk');
          if (chunk.data.length === 0 || chunk.data.length > SEALED_CHUNK_BYTES) throw new Error(`S3 blob store: a sealed chunk of ${chunk.data.length} bytes`);
          // A full part goes up only once another chunk shows it is not the last.
          if (part.length === PART_CHUNKS) await uploadPart();
          part.push(chunk.data);
          chunkCount++;
          storedBytes += chunk.data.length;
          lastLength = chunk.data.length;
        }
        if (uploadId === undefined) {
          // At most one part: a single request, and no multipart upload to leave behind.
          const Body = takePart();
          await client.send(new PutObjectCommand({ Bucket, Key, Body, ContentLength: Body.length, Metadata }));
        } else {
          if (part.length > 0) await uploadPart();
          await client.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId: uploadId, MultipartUpload: { Parts: parts } }));
        }
        return { chunkCount, storedBytes };
      } catch (error) {
        part = [];
        if (uploadId !== undefined) {
          // Parts of an unfinished upload are stored (and billed) until aborted. If this abort
          // fails too, sweepOrphans aborts it once it is an hour old.
          await client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId: uploadId })).catch(() => undefined);
        }
        throw error;
      }
    },

    async *read(ref) {
      const Key = objectKey(ref);
      const window = READ_WINDOW_CHUNKS * SEALED_CHUNK_BYTES;
      let offset = 0;
      let idx = 0;
      let carry: Buffer = Buffer.alloc(0);
      let total: number | undefined;
      for (;;) {
        let res;
        try {
          res = await client.send(new GetObjectCommand({ Bucket, Key, Range: `bytes=${offset}-${offset + window - 1}` }));
        } catch (error) {
          // No object (or an empty one): no chunks, which openChunks reports as an integrity failure.
          if (offset === 0 && isMissing(error)) return;
          throw error;
        }
        // A server that ignores Range answers 200 with the whole object: still correct.
        total ??= totalFromContentRange(res.ContentRange) ?? res.ContentLength ?? 0;
        if (total === 0) {
          // An empty object (never written so: see write). S3 answers 416, caught above; some
          // servers answer 206 with a body they never send, so it is not read.
          (res.Body as { destroy?: () => void } | undefined)?.destroy?.();
          return;
        }
        const body = await readAll(res.Body);
        if (body.length === 0) throw new Error('S3 blob store: an empty range before the end of the object');
        offset += body.length;
        const bytes = carry.length > 0 ? Buffer.concat([carry, body]) : body;
        const end = offset >= total;
        let at = 0;
        while (bytes.length - at >= SEALED_CHUNK_BYTES || (end && at < bytes.length)) {
          const next = Math.min(at + SEALED_CHUNK_BYTES, bytes.length);
          yield { idx: idx++, data: bytes.subarray(at, next) };
          at = next;
        }
        if (end) return;
        carry = bytes.subarray(at);
      }
    },

    async remove(tx, ref) {
      // Chunk rows a PostgreSQL store wrote before BLOB_STORE was switched (none otherwise): in
      // the caller's transaction, so a pending row can always be deleted and shredding frees them.
      await tx.delete(documentChunks).where(and(eq(documentChunks.documentId, ref.documentId), eq(documentChunks.orgId, ref.orgId)));
      // The object is deleted now, inside the caller's transaction rather than after its commit
      // (S3 cannot join it). Why this order is safe:
      // - a refused or broken upload: the row is pending (invisible). If the delete fails, the
      //   transaction rolls back, the row stays pending and sweepPendingUploads retries;
      // - crypto-shredding: if the transaction rolls back after the delete, the document keeps
      //   its key but not its content (downloads fail as integrity errors) until the DELETE is
      //   repeated, which the caller wanted anyway: retention is over. If the delete fails, the
      //   transaction rolls back and nothing changed. So whenever the commit succeeds, the object
      //   is gone. Deleting after the commit would risk the opposite, an object left behind by a
      //   crash; it would be unreadable (the key is destroyed with the commit) and sweepOrphans
      //   deletes objects of shredded rows, so that order would be safe too, only slower to clean.
      await client.send(new DeleteObjectCommand({ Bucket, Key: objectKey(ref) }));
    },

    async sweepOrphans(olderThan) {
      let removed = await abortStaleUploads(olderThan);
      for (let listed = 0; listed < SWEEP_KEYS_PER_CALL; ) {
        const page = await client.send(new ListObjectsV2Command({ Bucket, MaxKeys: LIST_PAGE, ...(sweepAfter ? { StartAfter: sweepAfter } : {}) }));
        const contents = page.Contents ?? [];
        listed += contents.length;
        const candidates: { key: string; ref: BlobRef }[] = [];
        for (const object of contents) {
          if (!object.Key || !object.LastModified || object.LastModified >= olderThan) continue;
          const ref = parseObjectKey(object.Key);
          if (ref) candidates.push({ key: object.Key, ref });
        }
        removed += await deleteOrphans(candidates);
        const last = contents[contents.length - 1]?.Key;
        if (!page.IsTruncated || !last) {
          sweepAfter = undefined; // the whole bucket was seen: the next sweep starts over
          break;
        }
        sweepAfter = last;
      }
      return removed;
    },

    async close() {
      client.destroy();
    },
  };
}
