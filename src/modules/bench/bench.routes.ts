/**
 * Bench-only routes, registered only when BENCH_MODE=true (which the configuration refuses
 * in production) and hidden from the contract. `POST /bench/baseline-insert` is the baseline
 * every `npm run bench` ratio is measured against.
 */
import { randomBytes } from 'node:crypto';
import { Type } from 'typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Db } from '../../db/client.js';
import { newId } from '../../lib/ids.js';
import { createBenchRepo } from './bench.repo.js';

export const benchRoutes: FastifyPluginAsyncTypebox<{ db: Db }> = async (app, { db }) => {
  const repo = createBenchRepo(db);
  await repo.ensureTable();
  app.post(
    '/bench/baseline-insert',
    {
      schema: {
        hide: true,
        body: Type.Object({ orgId: Type.String({ maxLength: 100 }), body: Type.String({ maxLength: 20000 }) }, { additionalProperties: false }),
      },
    },
    async (req, reply) => {
      const now = new Date();
      // The sizes of a sealed message row and of its audit event row.
      const message = Buffer.concat([randomBytes(29), Buffer.from(req.body.body)]);
      const event = randomBytes(420);
      await db.transaction(async (tx) => {
        await repo.insert(tx, { id: newId(), orgId: req.body.orgId, kind: 'message', payload: message, createdAt: now });
        await repo.insert(tx, { id: newId(), orgId: req.body.orgId, kind: 'event', payload: event, createdAt: now });
      });
      return reply.status(201).send({ ok: true });
    },
  );
};
