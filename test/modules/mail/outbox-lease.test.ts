/**
 * A worker whose claim is stale (its lease ran out, or another worker sent the row) must not
 * change the row: a late "retry" can never reopen a sent mail, which would resend it without
 * its (wiped) body.
 */
import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { build } from '../../fixtures/build.js';
import { rowsOf } from '../../../src/db/util.js';
import { createOutboxRepo } from '../../../src/modules/mail/outbox.repo.js';

t.test('stale claims change nothing', async (t) => {
  const h = await build(t, { env: { MAIL_DIR: mkdtempSync(path.join(tmpdir(), 'sc-lease-')) } });
  await h.call('PUT', '/v1/customers/c-1', h.integration(), { displayName: 'A', dateOfBirth: '1990-01-01' });
  const thread = (await h.call('POST', '/v1/threads', h.staff(), { record: { kind: 'customer', id: 'c-1' }, subject: 's', body: 'b', replyAllowed: false })).json().thread;
  await h.call('POST', `/v1/threads/${thread.id}/access-links`, h.staff(), { email: 'x@example.net', expiresIn: '3d', verify: { dateOfBirth: true, phone: false } });
  const { db } = h.app.database;
  const [before] = rowsOf<{ id: string; attempts: number }>(
    await db.execute(sql`select id, attempts from email_outbox where org_id = ${h.orgId} and kind = 'access_link'`),
  );
  // A stale worker claimed it as attempt 1, then stalled; meanwhile the row was sent as attempt 1 by another.
  const statusOf = async () =>
    rowsOf<{ status: string }>(await db.execute(sql`select status from email_outbox where id = ${before!.id}`))[0]!.status;
  // On a shared database other tests' due rows may come first: drain until ours went out.
  for (let i = 0; i < 100 && (await statusOf()) !== 'sent'; i++) await h.app.mail.drainNow();
  const sent = rowsOf<{ status: string; attempts: number; body: number | null }>(
    await db.execute(sql`select status, attempts, length(body_sealed) as body from email_outbox where id = ${before!.id}`),
  );
  t.same(sent, [{ status: 'sent', attempts: 1, body: null }]);
  const repo = createOutboxRepo(db);
  await repo.markRetry(before!.id, 0, new Date(), 'late failure from a stale claim', false);
  await repo.markRetry(before!.id, 1, new Date(), 'late failure after it was sent', false);
  const after = rowsOf<{ status: string; attempts: number; last_error: string | null }>(
    await db.execute(sql`select status, attempts, last_error from email_outbox where id = ${before!.id}`),
  );
  t.same(after, [{ status: 'sent', attempts: 1, last_error: null }], 'neither late retry reopened the sent row');
  await h.app.mail.drainNow();
  const final = rowsOf<{ status: string; attempts: number }>(await db.execute(sql`select status, attempts from email_outbox where id = ${before!.id}`));
  t.same(final, [{ status: 'sent', attempts: 1 }], 'it is not claimed or sent again');
});
