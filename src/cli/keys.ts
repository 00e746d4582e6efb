/**
 * `npm run keys:status [-- --org <id>]`: rows per key version, per table.
 * `npm run keys:rewrap [-- --org <id>] [--batch 100]`: re-wraps every data key under the newest
 * version of ENCRYPTION_KEYS, batch by batch (each its own transaction), printing progress.
 * Safe beside the running service, safe to kill and rerun.
 */
import { parseArgs } from 'node:util';
import { loadConfig } from '../config.js';
import { databaseOptionsOf, openDatabase } from '../db/client.js';
import { KeyRing } from '../lib/crypto/index.js';
import { createKeysRepo, ENVELOPE_TABLES } from '../modules/keys/keys.repo.js';
import { createKeysService } from '../modules/keys/keys.service.js';

const [command] = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const { values } = parseArgs({ options: { org: { type: 'string' }, batch: { type: 'string', default: '100' } }, allowPositionals: true });
const batch = Number(values.batch);
if (!['status', 'rewrap'].includes(command ?? '') || !Number.isInteger(batch) || batch < 1) {
  process.stderr.write('usage: keys status|rewrap [--org <id>] [--batch <n>]\n');
  process.exit(2);
}

const config = loadConfig();
const keyRing = KeyRing.parse(config.encryptionKeys);
const database = await openDatabase(databaseOptionsOf(config));
const keys = createKeysService({ db: database.db, repo: createKeysRepo(database.db), keyRing });

try {
  if (command === 'status') {
    const status = await keys.status(values.org);
    process.stdout.write(`newest version: v${keyRing.newestVersion}\n`);
    for (const table of ENVELOPE_TABLES) {
      const parts = Object.entries(status[table]).map(([v, n]) => `${v}=${n}`);
      process.stdout.write(`${table}: ${parts.length > 0 ? parts.join(' ') : 'no rows'}\n`);
    }
    process.stdout.write(`rows not on v${keyRing.newestVersion}: ${await keys.remaining(values.org)}\n`);
  } else {
    let done = 0;
    for (const table of ENVELOPE_TABLES) {
      for (;;) {
        const moved = await keys.rewrapBatch(table, batch, values.org);
        if (moved === 0) break;
        done += moved;
        process.stdout.write(`rewrapped ${done} rows; ${await keys.remaining(values.org)} remaining (${table})\n`);
      }
    }
    process.stdout.write(`done: ${done} rows rewrapped to v${keyRing.newestVersion}; ${await keys.remaining(values.org)} remaining\n`);
  }
} finally {
  await database.close();
}
