/**
 * Audit export benchmark (compliance issue): seeds N chained events for one org straight into
 * PostgreSQL, then streams GET /v1/audit-events/export from a real server and reports the
 * server's peak RSS growth above idle and the export rate. The client counts bytes and drops
 * them, so only the server's memory is measured.
 */
import { request } from 'node:http';
import { randomUUID } from 'node:crypto';
import postgres from 'postgres';
import { chainHash, GENESIS_HASH } from '../../src/modules/audit/audit-chain.js';
import { peakRssDuring, startServer, type BenchServer } from './server.js';

const MiB = 1024 * 1024;

async function seed(orgId: string, count: number): Promise<void> {
  const sql = postgres(process.env.DATABASE_URL!, { max: 1, onnotice: () => {} });
  try {
    let prev = GENESIS_HASH;
    const start = Date.now() - count * 1000;
    for (let base = 0; base < count; base += 2000) {
      const rows = [];
      for (let i = base; i < Math.min(count, base + 2000); i++) {
        const e = {
          id: randomUUID(),
          orgId,
          seq: i + 1,
          prevHash: prev,
          occurredAt: new Date(start + i * 1000),
          actorKind: 'staff',
          actorId: `staff-${i % 50}`,
          actorName: 'Bench Staff',
          action: 'message.sent',
          outcome: 'success',
          recordKind: 'customer',
          recordId: `c-${i % 1000}`,
          threadId: randomUUID(),
          messageId: randomUUID(),
          documentId: null,
          linkId: null,
          ip: '127.0.0.1',
          userAgent: 'bench/1.0',
          requestId: randomUUID(),
          reason: null,
        };
        const hash = chainHash(e);
        prev = hash;
        rows.push({
          id: e.id, org_id: orgId, seq: e.seq, prev_hash: e.prevHash, hash, occurred_at: e.occurredAt, actor_kind: e.actorKind, actor_id: e.actorId,
          actor_name: e.actorName, action: e.action, outcome: e.outcome, record_kind: e.recordKind, record_id: e.recordId, thread_id: e.threadId,
          message_id: e.messageId, document_id: null, link_id: null, ip: e.ip, user_agent: e.userAgent, request_id: e.requestId, reason: null,
        });
      }
      await sql`insert into audit_events ${sql(rows)}`;
    }
    await sql`insert into audit_chain_heads (org_id, seq, hash) values (${orgId}, ${count}, ${prev})`;
  } finally {
    await sql.end();
  }
}

function exportAll(server: BenchServer): Promise<{ bytes: number; lines: number }> {
  return new Promise((resolve, reject) => {
    const req = request(`${server.base}/v1/audit-events/export`, { headers: { authorization: `Bearer ${server.token('admin')}` } });
    req.on('response', (res) => {
      let bytes = 0;
      let lines = 0;
      res.on('data', (d: Buffer) => {
        bytes += d.length;
        for (const b of d) if (b === 10) lines++;
      });
      res.on('end', () => (res.statusCode === 200 ? resolve({ bytes, lines }) : reject(new Error(`export: ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end();
  });
}

export async function runAuditExportBench(count = 100_000): Promise<object[]> {
  const server = await startServer();
  try {
    const seeded = Date.now();
    await seed(server.orgId, count);
    const seedSeconds = (Date.now() - seeded) / 1000;
    await exportAll(server).catch(() => undefined); // warm-up (JIT, pool)
    await new Promise((r) => setTimeout(r, 500));
    const idle = server.rssBytes();
    const started = Date.now();
    const { result, peak } = await peakRssDuring(server, () => exportAll(server));
    const seconds = (Date.now() - started) / 1000;
    if (result.lines !== count) throw new Error(`exported ${result.lines} lines, expected ${count}`);
    return [
      {
        scenario: `audit-export-${count}`,
        events: result.lines,
        exportMiB: Number((result.bytes / MiB).toFixed(1)),
        seconds: Number(seconds.toFixed(2)),
        eventsPerSecond: Math.round(count / seconds),
        idleRssMiB: Number((idle / MiB).toFixed(1)),
        peakRssMiB: Number((peak / MiB).toFixed(1)),
        rssGrowthMiB: Number(((peak - idle) / MiB).toFixed(1)),
        seedSeconds: Number(seedSeconds.toFixed(1)),
      },
    ];
  } finally {
    await server.stop();
  }
}
