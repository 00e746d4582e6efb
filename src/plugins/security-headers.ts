/**
 * Security headers on every answer: helmet's defaults, no referrer, and no caching of API
 * answers (they carry PHI). Swagger UI gets the looser CSP it needs, and only under /docs.
 */
import fp from 'fastify-plugin';
import helmet from '@fastify/helmet';

export default fp(
  async function securityHeaders(app) {
    await app.register(helmet, {
      global: true,
      referrerPolicy: { policy: 'no-referrer' },
      contentSecurityPolicy: { directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
      crossOriginResourcePolicy: { policy: 'same-origin' },
    });
    app.addHook('onSend', async (request, reply) => {
      if (!request.url.startsWith('/docs')) reply.header('cache-control', 'no-store');
    });
  },
  { name: 'security-headers' },
);
