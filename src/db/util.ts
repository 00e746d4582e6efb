/** Small helpers that hide the differences between the PGlite and postgres.js drivers. */

/** `db.execute()` yields `{ rows }` on PGlite and an array on postgres.js. */
export function rowsOf<T>(result: unknown): T[] {
  if (Array.isArray(result)) return result as T[];
  return ((result as { rows?: T[] }).rows ?? []) as T[];
}

/** The SQLSTATE of a driver error, looking through Drizzle's wrapper (`cause`). */
export function sqlState(error: unknown): string | undefined {
  let e: unknown = error;
  for (let depth = 0; depth < 4 && e !== null && typeof e === 'object'; depth++) {
    const code = (e as { code?: unknown }).code;
    // A SQLSTATE's class starts with a digit, F, H, P or X: never E, as system codes (EPERM, EROFS) do.
    if (typeof code === 'string' && /^[0-9FHPX][0-9A-Z]{4}$/.test(code)) return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

export const isUniqueViolation = (error: unknown): boolean => sqlState(error) === '23505';

/** postgres.js and Node socket errors that mean "no database connection right now". */
const CONNECTION_CODES = new Set([
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  'CONNECT_TIMEOUT',
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  // The host name does not resolve for now (DNS moving to a new primary during a failover).
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * True when a driver error means the database is unreachable or going away (a restart, a
 * failover, killed connections), rather than that the query was wrong: the caller may retry,
 * so the answer is 503, not 500. SQLSTATE class 08 (connection exception), 57P01-57P03
 * (shutdown, cannot connect now), 53300 (too many connections) and 25006 (a read-only
 * transaction: connected to a primary that was demoted to a standby) count.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  let e: unknown = error;
  for (let depth = 0; depth < 4 && e !== null && typeof e === 'object'; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') {
      if (CONNECTION_CODES.has(code) || code.startsWith('08') || /^57P0[1-3]$/.test(code) || code === '53300' || code === '25006') return true;
    }
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/**
 * Promise.all for statements of one transaction sent together (postgres.js pipelines them).
 * It waits for every one to settle before it rejects with the first failure: with plain
 * Promise.all, a failure ends the transaction callback while a sibling is still between two
 * awaits, and that sibling's next statement would then go to a finished transaction (or to
 * the connection after ROLLBACK), outside any transaction.
 */
export async function allSettledInTransaction<const T extends readonly unknown[]>(work: T): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> }> {
  // The first failure in time is the cause; later ones are usually its echo (25P02, "current
  // transaction is aborted"), so they must not hide it.
  let first: { error: unknown } | undefined;
  const results = await Promise.allSettled(
    work.map((w) =>
      Promise.resolve(w).catch((error: unknown) => {
        first ??= { error };
        throw error;
      }),
    ),
  );
  if (first) throw (first as { error: unknown }).error;
  return results.map((r) => (r as PromiseFulfilledResult<unknown>).value) as { -readonly [K in keyof T]: Awaited<T[K]> };
}
