/**
 * The polling loop of an outbox worker (mail, webhooks): one pass at a time in this process,
 * the next pass `intervalMs` after the previous one ended, and a stop that waits for the pass
 * in flight. Passes on other instances are kept apart by the outbox's row claims
 * (FOR UPDATE SKIP LOCKED), not by this.
 */
import type { Logger } from 'pino';

export interface Poller {
  /** Runs one pass now, or joins the one already running; resolves with what it handled. */
  runNow(): Promise<number>;
  start(intervalMs: number): void;
  stop(): Promise<void>;
}

export function createPoller(pass: () => Promise<number>, log: Pick<Logger, 'error'>, what: string): Poller {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<number> | undefined;
  const runNow = () => (running ??= pass().finally(() => (running = undefined)));
  return {
    runNow,
    start(intervalMs) {
      if (timer) return;
      const tick = () => {
        runNow()
          // The error's name only: driver messages may quote parameters.
          .catch((error: unknown) => log.error({ errorName: (error as Error).name }, `${what} pass failed`))
          .finally(() => {
            if (timer) timer = setTimeout(tick, intervalMs);
          });
      };
      timer = setTimeout(tick, intervalMs);
    },
    async stop() {
      const t = timer;
      timer = undefined;
      if (t) clearTimeout(t);
      await running?.catch(() => undefined);
    },
  };
}
