/**
 * Upload and download benchmark (documents issue): streams 5 and 25 MiB files into a real
 * server and back, once with content in PostgreSQL chunks and once in an S3 store (a local
 * s3rver on 127.0.0.1, the one the tests use), and reports throughput and the server's peak RSS
 * growth above idle.
 * The request body is generated on the fly and the download is discarded as it arrives, so
 * the load generator never holds a whole file either.
 */
import { request } from 'node:http';
import { randomBytes } from 'node:crypto';
import type { Test } from 'tap';
import { startServer, peakRssDuring, type BenchServer } from './server.js';
import { startLocalS3 } from '../fixtures/s3.js';

const MiB = 1024 * 1024;

function uploadStream(server: BenchServer, size: number): Promise<{ id: string }> {
  const boundary = `----bench${randomBytes(8).toString('hex')}`;
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="bench.pdf"\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.7\n`,
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const body = size - 9;
  return new Promise((resolve, reject) => {
    const req = request(`${server.base}/v1/library/documents`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${server.token('staff')}`,
        'content-type': `multipart/form-data; boundary=${boundary}`,
        'content-length': head.length + body + tail.length,
      },
    });
    req.on('response', (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => {
        const text = Buffer.concat(parts).toString();
        if (res.statusCode !== 201) reject(new Error(`upload: ${res.statusCode} ${text}`));
        else resolve(JSON.parse(text) as { id: string });
      });
    });
    req.on('error', reject);
    req.write(head);
    const block = randomBytes(64 * 1024);
    let sent = 0;
    const pump = () => {
      while (sent < body) {
        const n = Math.min(block.length, body - sent);
        sent += n;
        if (!req.write(n === block.length ? block : block.subarray(0, n))) return void req.once('drain', pump);
      }
      req.end(tail);
    };
    pump();
  });
}

function download(server: BenchServer, id: string, size: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(`${server.base}/v1/documents/${id}/content`, { headers: { authorization: `Bearer ${server.token('staff')}` } });
    req.on('response', (res) => {
      let n = 0;
      res.on('data', (d: Buffer) => (n += d.length));
      // A short body would flatter the MB/s: only a whole file counts.
      res.on('end', () => (res.statusCode === 200 && n === size ? resolve(n) : reject(new Error(`download: ${res.statusCode}, ${n} of ${size} bytes`))));
    });
    req.on('error', reject);
    req.end();
  });
}

export interface UploadBenchRow {
  scenario: string;
  files: number;
  sizeMiB: number;
  seconds: number;
  mbPerSecond: number;
  idleRssMiB: number;
  peakRssMiB: number;
  rssGrowthMiB: number;
}

async function measure(server: BenchServer, scenario: string, files: number, size: number, work: () => Promise<unknown>): Promise<UploadBenchRow> {
  // Let the server's garbage from the previous leg settle (its GC, not ours, decides its RSS).
  await new Promise((r) => setTimeout(r, 300));
  const idle = server.rssBytes();
  const started = process.hrtime.bigint();
  const { peak } = await peakRssDuring(server, work);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return {
    scenario,
    files,
    sizeMiB: size / MiB,
    seconds: Number(seconds.toFixed(2)),
    mbPerSecond: Number(((files * size) / 1e6 / seconds).toFixed(1)),
    idleRssMiB: Number((idle / MiB).toFixed(1)),
    peakRssMiB: Number((peak / MiB).toFixed(1)),
    rssGrowthMiB: Number(((peak - idle) / MiB).toFixed(1)),
  };
}

/** The same sizes and concurrency against one server (one blob store). */
async function runAgainst(server: BenchServer, store: string): Promise<UploadBenchRow[]> {
  const rows: UploadBenchRow[] = [];
  await uploadStream(server, 1 * MiB); // warm-up: JIT, pools, first migration check
  for (const size of [5 * MiB, 25 * MiB]) {
    let id = '';
    rows.push(await measure(server, `${store} upload-${size / MiB}MiB`, 1, size, async () => (id = (await uploadStream(server, size)).id)));
    rows.push(await measure(server, `${store} download-${size / MiB}MiB`, 1, size, () => download(server, id, size)));
  }
  const ids: string[] = [];
  rows.push(
    await measure(server, `${store} upload-25MiB x4 concurrent`, 4, 25 * MiB, async () => {
      ids.push(...(await Promise.all([0, 1, 2, 3].map(() => uploadStream(server, 25 * MiB)))).map((d) => d.id));
    }),
  );
  rows.push(await measure(server, `${store} download-25MiB x4 concurrent`, 4, 25 * MiB, () => Promise.all(ids.map((id) => download(server, id, 25 * MiB)))));
  return rows;
}

export async function runUploadBench(): Promise<UploadBenchRow[]> {
  const allocation = { STORAGE_ALLOCATION_BYTES: String(50 * 1024 ** 3) };
  const rows: UploadBenchRow[] = [];
  const pg = await startServer(allocation);
  try {
    rows.push(...(await runAgainst(pg, 'postgres')));
  } finally {
    await pg.stop();
  }
  // The S3 leg: s3rver runs in this (the load generator's) process; the server is measured.
  const teardowns: (() => Promise<void> | void)[] = [];
  const local = await startLocalS3({ teardown: (fn: () => Promise<void> | void) => void teardowns.push(fn) } as unknown as Test);
  try {
    const bucket = await local.bucket();
    const s3 = await startServer({ ...allocation, ...local.env(bucket) });
    try {
      rows.push(...(await runAgainst(s3, 's3')));
    } finally {
      await s3.stop();
    }
  } finally {
    for (const fn of teardowns.reverse()) await fn();
  }
  return rows;
}
