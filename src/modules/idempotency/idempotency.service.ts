/**
 * Idempotency-Key support for creating requests. A retried request with the same key and the
 * same body gets the original resource again (re-read, so nothing sensitive is cached); the
 * same key with a different body gets 422.
 *
 * Invariant: the key row is inserted in the same transaction as the resource, so a key never
 * points at a resource that was rolled back. Only a keyed fingerprint of the body is stored.
 */
import type { Db, Tx } from '../../db/client.js';
import { isUniqueViolation } from '../../db/util.js';
import type { Clock } from '../../lib/clock.js';
import type { RequestContext } from '../../lib/context.js';
import type { KeyRing } from '../../lib/crypto/index.js';
import { AppError } from '../../lib/errors.js';
import type { IdempotencyRepo } from './idempotency.repo.js';

export interface IdempotentCall<T> {
  scope: string;
  key: string | undefined;
  /** The request as the client sent it; fingerprinted, never stored. */
  request: unknown;
  /** Creates the resource in `tx` and returns its id with the answer. */
  create(tx: Tx): Promise<{ resourceId: string; result: T }>;
  /** Re-reads an earlier result by resource id. */
  replay(resourceId: string): Promise<T>;
}

export function createIdempotencyService(deps: { db: Db; repo: IdempotencyRepo; keyRing: KeyRing; clock: Clock }) {
  const { db, repo, keyRing, clock } = deps;

  return {
    async run<T>(ctx: RequestContext, call: IdempotentCall<T>): Promise<{ result: T; replayed: boolean }> {
      const { key } = call;
      if (key === undefined) {
        return { result: await db.transaction(async (tx) => (await call.create(tx)).result), replayed: false };
      }
      const { orgId, id: actorId } = ctx.actor;
      const canonical = JSON.stringify(call.request);
      const replayExisting = async () => {
        const existing = await repo.find(orgId, actorId, call.scope, key);
        if (!existing) return undefined;
        if (!keyRing.fingerprintMatches(existing.fingerprint, canonical)) throw new AppError('idempotency_key_reused', 'This Idempotency-Key was used with a different body; use a new key');
        return { result: await call.replay(existing.resourceId), replayed: true };
      };
      const earlier = await replayExisting();
      if (earlier) return earlier;
      try {
        const result = await db.transaction(async (tx) => {
          const created = await call.create(tx);
          await repo.insert(
            { orgId, actorId, scope: call.scope, key, fingerprint: keyRing.fingerprint(canonical), resourceId: created.resourceId, createdAt: clock.now() },
            tx,
          );
          return created.result;
        });
        return { result, replayed: false };
      } catch (error) {
        // A concurrent request with the same key committed first: answer as its replay.
        if (!isUniqueViolation(error)) throw error;
        const raced = await replayExisting();
        if (!raced) throw error;
        return raced;
      }
    },
  };
}

export type IdempotencyService = ReturnType<typeof createIdempotencyService>;
