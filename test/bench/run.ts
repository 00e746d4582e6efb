/**
 * `npm run bench [-- scenario...]`: runs benchmark scenarios against a real server on
 * PostgreSQL (DATABASE_URL, default the local test database), prints a table and writes it
 * as JSON to bench-results.json. Benchmarks are not tests: nothing here is timed in CI.
 */
import { writeFileSync } from 'node:fs';
import { runUploadBench } from './upload.js';
import { runAuditExportBench } from './audit-export.js';

process.env.DATABASE_URL ??= 'postgres://postgres@127.0.0.1:5432/test';
const SCENARIOS: Record<string, () => Promise<object[]>> = { upload: runUploadBench, 'audit-export': () => runAuditExportBench() };
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
