/**
 * `npm run bench [-- scenario...]`: runs benchmark scenarios against a real server on
 * PostgreSQL (DATABASE_URL, default the local test database), prints the tables and writes
 * them as JSON to bench-results.json. Benchmarks are not tests: nothing here is timed in CI.
 *
 * Scenarios: http (baseline-insert, send-message, list-messages, list-threads,
 * external-session, send-message with the chain off), crypto (encryption CPU per message),
 * upload (25 MiB and 5 MiB transfers, 4 concurrent), audit-export. The default runs them all.
 */
import { writeFileSync } from 'node:fs';
import { runUploadBench, type UploadBenchRow } from './upload.js';
import { runAuditExportBench } from './audit-export.js';
import { runHttpBench, type HttpBenchRow } from './http.js';
import { runCryptoBench } from './crypto.js';

process.env.DATABASE_URL ??= 'postgres://postgres@127.0.0.1:5432/test';

/** Each target as a ratio within one run (absolute figures drift on shared machines). */
function withTargets(rows: HttpBenchRow[]) {
  const by = (name: string) => rows.find((r) => r.scenario === name);
  const base = by('baseline-insert')!;
  const send = by('send-message');
  const off = by('send-message (audit chain off)');
  const target: Record<string, { ratio: number; target: string; met: boolean }> = {};
  // A run with failed requests (errors, timeouts, non-2xx) meets nothing: fast failures would
  // flatter the req/s.
  const clean = (...used: (HttpBenchRow | undefined)[]) => used.every((r) => r && r.errors === 0);
  if (send) {
    const ratio = send.reqPerSec / base.reqPerSec;
    target['send-message'] = { ratio, target: '>= 0.70 x baseline req/s', met: ratio >= 0.7 && clean(send, base) };
    const p99 = send.p99Ms / Math.max(1, base.p99Ms);
    target['send-message p99'] = { ratio: p99, target: '<= 1.5 x baseline p99', met: p99 <= 1.5 && clean(send, base) };
  }
  const list = by('list-messages');
  if (list) target['list-messages'] = { ratio: list.reqPerSec / base.reqPerSec, target: '>= 0.40 x baseline req/s', met: list.reqPerSec / base.reqPerSec >= 0.4 && clean(list, base) };
  const rerun = by('send-message (audit chain on, fresh server)');
  if (send && off) {
    const chained = rerun ? (send.reqPerSec + rerun.reqPerSec) / 2 : send.reqPerSec;
    const cost = 1 - chained / off.reqPerSec;
    target['audit chain cost'] = { ratio: cost, target: '<= 0.10 of send-message req/s (mean of both chained runs)', met: cost <= 0.1 && clean(send, off, ...(rerun ? [rerun] : [])) };
  }
  return [
    ...rows.map((r) => ({ ...r, ratioToBaseline: Number((r.reqPerSec / base.reqPerSec).toFixed(2)) })),
    ...Object.entries(target).map(([scenario, t]) => ({ scenario: `target: ${scenario}`, ratio: Number(t.ratio.toFixed(3)), target: t.target, met: t.met })),
  ];
}

/** The transfer targets: throughput per store, peak RSS under 4 concurrent uploads, and RSS flat in file size. */
function withUploadTargets(rows: UploadBenchRow[]) {
  const by = (name: string) => rows.find((r) => r.scenario === name);
  const targets: { scenario: string; value: number; target: string; met: boolean }[] = [];
  for (const [store, minimum] of [['postgres', 60], ['s3', 150]] as const) {
    const one = by(`${store} upload-25MiB`);
    const four = by(`${store} upload-25MiB x4 concurrent`);
    const small = by(`${store} upload-5MiB`);
    if (one) targets.push({ scenario: `target: ${store} upload MB/s`, value: one.mbPerSecond, target: `>= ${minimum} MB/s`, met: one.mbPerSecond >= minimum });
    if (four) targets.push({ scenario: `target: ${store} peak RSS, 4 x 25 MiB`, value: four.peakRssMiB, target: '< 200 MB (190.7 MiB)', met: four.peakRssMiB * MiB < 200e6 });
    if (one && small) {
      const diff = one.peakRssMiB - small.peakRssMiB;
      targets.push({ scenario: `target: ${store} peak RSS 25 MiB - 5 MiB`, value: Number(diff.toFixed(1)), target: '<= 20 MB (19.1 MiB)', met: diff * MiB <= 20e6 });
    }
  }
  return [...rows, ...targets];
}
const MiB = 1024 * 1024;

const SCENARIOS: Record<string, () => Promise<object[]>> = {
  http: async () => withTargets(await runHttpBench()),
  crypto: runCryptoBench,
  upload: async () => withUploadTargets(await runUploadBench()),
  'audit-export': () => runAuditExportBench(),
};
const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const names = wanted.length > 0 ? wanted : Object.keys(SCENARIOS);
const unknown = names.filter((n) => !SCENARIOS[n]);
if (unknown.length > 0) {
  process.stderr.write(`unknown scenario(s): ${unknown.join(', ')}; known: ${Object.keys(SCENARIOS).join(', ')}\n`);
  process.exit(2);
}
const results: Record<string, object[]> = {};
for (const name of names) {
  results[name] = await SCENARIOS[name]!();
  console.table(results[name]);
}
writeFileSync('bench-results.json', `${JSON.stringify({ at: new Date().toISOString(), results }, null, 2)}\n`);
process.stdout.write('wrote bench-results.json\n');
