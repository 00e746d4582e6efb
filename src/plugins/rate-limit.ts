/**
 * Rate limits (DESIGN section 6). @fastify/rate-limit, registered without a global limit;
 * routes opt in. With REDIS_URL the counters live in Redis, shared by every instance; without
 * it, in process. If Redis does not answer, limited routes fail closed with 503: a limiter
 * that fails open would hand brute force a way in whenever Redis is down.
 */
import fp from 'fastify-plugin';
import rateLimit from '@fastify/rate-limit';
import { Redis } from 'ioredis';
import { AppError } from '../lib/errors.js';

type IncrCallback = (error: Error | null, result?: { current: number; ttl: number }) => void;

/** A fixed-window counter per key: INCR, set the window on first use, read the TTL. */
function redisStoreFor(redis: Redis) {
  return class RedisWindowStore {
    readonly #window: number;
    readonly #prefix: string;

    constructor(options: { timeWindow?: number; keyPrefix?: string }) {
      this.#window = options.timeWindow ?? 60_000;
      this.#prefix = options.keyPrefix ?? 'sc-rl:';
    }

    incr(key: string, callback: IncrCallback, timeWindow?: number) {
      const window = timeWindow ?? this.#window;
      const k = `${this.#prefix}${key}`;
      redis
        .multi()
        .incr(k)
        .pexpire(k, window, 'NX')
        .pttl(k)
        .exec()
        .then((results) => {
          if (!results || results.some(([err]) => err)) throw new Error('redis multi failed');
          const current = Number(results[0]![1]);
          const ttl = Math.max(0, Number(results[2]![1]));
          callback(null, { current, ttl });
        })
        .catch(() => callback(new AppError('service_unavailable', 'The rate limiter is unavailable; try again shortly')));
    }

    child(routeOptions: { timeWindow?: number; keyPrefix?: string; routeInfo?: { url?: string; method?: string } }) {
      const Store = redisStoreFor(redis);
      return new Store({ ...routeOptions, keyPrefix: `${this.#prefix}${routeOptions.routeInfo?.method ?? ''}${routeOptions.routeInfo?.url ?? ''}:` });
    }
  };
}

declare module 'fastify' {
  interface FastifyInstance {
    redis: Redis | null;
  }
}

export default fp(
  async function rateLimitPlugin(app, opts: { redisUrl?: string }) {
    let redis: Redis | null = null;
    if (opts.redisUrl) {
      redis = new Redis(opts.redisUrl, {
        lazyConnect: true,
        enableOfflineQueue: false,
        maxRetriesPerRequest: 1,
        connectTimeout: 2000,
        retryStrategy: (times) => Math.min(times * 200, 2000),
      });
      redis.on('error', (err: Error) => app.log.warn({ err: { message: err.message } }, 'redis error'));
      await redis.connect().catch((err: Error) => app.log.error({ err: { message: err.message } }, 'redis is not reachable at start'));
      app.addHook('onClose', async () => {
        redis?.disconnect();
      });
    }
    app.decorate('redis', redis);
    await app.register(rateLimit, {
      global: false,
      ...(redis ? { store: redisStoreFor(redis) as never } : {}),
      skipOnError: false,
      errorResponseBuilder: (_req, context) => new AppError('rate_limited', `Too many attempts; retry in ${context.after}`),
    });
  },
  { name: 'rate-limit' },
);
