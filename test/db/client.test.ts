/**
 * Transaction helpers: the before-commit queue refuses a transaction that has ended, and
 * statements sent together settle before their transaction may end.
 */
import t from 'tap';
import { sql } from 'drizzle-orm';
import { assertTransactionOpen, openDatabase, runBeforeCommit } from '../../src/db/client.js';
import { allSettledInTransaction, isDatabaseUnavailable } from '../../src/db/util.js';

t.test('runBeforeCommit queues on an open transaction, refuses an ended one, and declines the database itself', async (t) => {
  const database = await openDatabase({ pgliteDir: null });
  t.teardown(() => database.close());
  const ran: string[] = [];
  let ended: object | undefined;
  await database.db.transaction(async (tx) => {
    ended = tx;
    t.equal(
      runBeforeCommit(tx, async () => void ran.push('before commit')),
      true,
      'queued on an open transaction',
    );
    ran.push('callback');
  });
  t.same(ran, ['callback', 'before commit'], 'the queued work ran after the callback, inside the transaction');
  t.throws(() => runBeforeCommit(ended!, async () => undefined), /already ended/, 'an ended transaction is refused, not run "now"');
  t.throws(() => assertTransactionOpen(ended!), /already ended/, 'and reported as ended');
  t.doesNotThrow(() => assertTransactionOpen(database.db), 'the database itself is never "ended"');
  let straggler: Promise<unknown> | undefined;
  await database.db.transaction(async (tx) => {
    // A statement still between two awaits when the callback returns.
    straggler = new Promise((resolve) => setTimeout(resolve, 20)).then(() => runBeforeCommit(tx, async () => undefined));
  });
  await t.rejects(straggler!, /already ended/, 'work arriving after the callback returned is refused, even while the queue runs');
  t.equal(
    runBeforeCommit(database.db, async () => undefined),
    false,
    'outside a transaction the caller runs the work itself',
  );
  await t.rejects(
    database.db.transaction(async (tx) => {
      runBeforeCommit(tx, async () => {
        throw new Error('before-commit failure');
      });
      await tx.execute(sql`select 1`);
    }),
    /before-commit failure/,
    'a failing before-commit step fails the transaction',
  );
});

t.test('allSettledInTransaction rejects only once every statement has settled', async (t) => {
  const order: string[] = [];
  const slow = new Promise<number>((resolve) => setTimeout(() => resolve(order.push('slow settled')), 50));
  const failing = Promise.reject(new Error('first failure'));
  await t.rejects(allSettledInTransaction([failing, slow]), /first failure/);
  order.push('rejected');
  t.same(order, ['slow settled', 'rejected'], 'the sibling settled before the rejection reached the caller');
  t.same(await allSettledInTransaction([Promise.resolve(1), 'two', undefined]), [1, 'two', undefined], 'values keep their places');
  const echo = new Promise((_, reject) => setTimeout(() => reject(new Error('25P02 echo')), 30));
  const cause = new Promise((_, reject) => setTimeout(() => reject(new Error('the real cause')), 5));
  await t.rejects(allSettledInTransaction([echo, cause]), /the real cause/, 'the first failure in time is reported, not the first in order');
});

t.test('isDatabaseUnavailable: connection loss, failover and demotion are 503 material; query errors are not', async (t) => {
  const wrapped = (cause: object) => Object.assign(new Error('Failed query: select 1'), { cause });
  for (const code of ['CONNECTION_CLOSED', 'ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ENETUNREACH', '08006', '57P01', '53300', '25006']) {
    t.ok(isDatabaseUnavailable(wrapped({ code })), `${code} means unavailable`);
  }
  for (const code of ['23505', '22P02', '42P01', '40001', undefined]) {
    t.notOk(isDatabaseUnavailable(wrapped({ code })), `${code ?? 'no code'} is not`);
  }
});
