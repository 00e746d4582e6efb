/**
 * `npm run audit:verify [-- --org <id>] [--checkpoint <file.json>]`: recomputes the hash chain
 * of every organization (or one) straight from the database, without the HTTP service.
 * Exit code 0 when every chain verifies, 1 when any is broken.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config.js';
import { databaseOptionsOf, openDatabase } from '../db/client.js';
import { systemClock } from '../lib/clock.js';
import { createCheckpointSigner } from '../lib/crypto/index.js';
import { createAuditRepo } from '../modules/audit/audit.repo.js';
import { createAuditService, type Checkpoint } from '../modules/audit/audit.service.js';

const { values } = parseArgs({ options: { org: { type: 'string' }, checkpoint: { type: 'string' } } });
const config = loadConfig();
const database = await openDatabase(databaseOptionsOf(config));
const repo = createAuditRepo(database.db);
const audit = createAuditService({ db: database.db, repo, clock: systemClock, signer: createCheckpointSigner(config.auditCheckpointKey) });

let broken = 0;
try {
  const checkpoint = values.checkpoint ? (JSON.parse(readFileSync(values.checkpoint, 'utf8')) as Checkpoint) : undefined;
  if (checkpoint && !audit.verifyCheckpointSignature(checkpoint)) {
    process.stderr.write('the checkpoint signature is not valid for AUDIT_CHECKPOINT_KEY\n');
    process.exit(1);
  }
  const orgs = values.org ? [values.org] : checkpoint ? [checkpoint.orgId] : (await repo.orgs()).map((o) => o.orgId);
  for (const orgId of orgs) {
    const result = await audit.verify(orgId, checkpoint ? { checkpoint } : {});
    if (!result.valid) broken++;
    process.stdout.write(
      `${result.valid ? 'ok    ' : 'BROKEN'} ${orgId}: ${result.checked} events checked, head ${result.head.seq}:${result.head.hash.slice(0, 16)}…` +
        (result.firstBreak ? `, first break at seq ${result.firstBreak.seq} (${result.firstBreak.problem})` : '') +
        '\n',
    );
  }
  process.stdout.write(`${orgs.length} chain(s), ${broken} broken\n`);
} finally {
  await database.close();
}
process.exit(broken > 0 ? 1 : 0);
