/**
 * Bearer-token authentication (DESIGN section 2). Tokens come from the platform's identity
 * provider; this service only verifies them.
 *
 * Invariants:
 * - algorithms are allowlisted per key kind: HS256 for a shared secret, RS256 or ES256 for a
 *   public key, so `alg: none` and HS/RS confusion fail verification;
 * - `exp` is required, and `iss`/`aud` are checked when configured;
 * - a token that verifies but has malformed claims is treated like an invalid token (401).
 */
import fp from 'fastify-plugin';
import fastifyJwt from '@fastify/jwt';
import type { FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';
import type { JwtConfig } from '../config.js';
import { AppError } from '../lib/errors.js';
import { ACTOR_ROLES, type Actor, type ActorRole, type RequestContext } from '../lib/context.js';
import { isStorableText, sanitizeHeaderText } from '../lib/text.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** onRequest hook: verifies the bearer token and requires one of `roles`. */
    authorize(roles: readonly ActorRole[], deniedAction: string): onRequestHookHandler;
  }
  interface FastifyRequest {
    actor: Actor | null;
  }
}

const USER_AGENT_MAX = 256;
const CLAIM_MAX = 128;

function parseClaims(payload: unknown): Actor | null {
  if (payload === null || typeof payload !== 'object') return null;
  const p = payload as Record<string, unknown>;
  // Claims end up in text columns, logs and audit hashes: no control characters (NUL would
  // break SQL) and no unpaired surrogates (stored as U+FFFD, they would break the audit chain).
  const str = (v: unknown, max = CLAIM_MAX) => (typeof v === 'string' && v.length > 0 && v.length <= max && isStorableText(v) ? v : null);
  const role = ACTOR_ROLES.find((r) => r === p.role);
  const id = str(p.sub);
  const orgId = str(p.org);
  if (!role || !id || !orgId) return null;
  let rec: Actor['rec'] = null;
  if (role === 'patron') {
    const m = typeof p.rec === 'string' ? /^(customer|volunteer):([A-Za-z0-9._:-]{1,128})$/.exec(p.rec) : null;
    if (!m) return null;
    rec = { kind: m[1] as 'customer' | 'volunteer', id: m[2]! };
  }
  const name = p.name === undefined ? null : str(p.name, 200);
  return { role, id, orgId, name: name ?? null, rec };
}

export function requestContext(request: FastifyRequest): RequestContext {
  if (!request.actor) throw new AppError('unauthorized');
  return {
    actor: request.actor,
    ip: request.ip ?? null,
    userAgent: sanitizeHeaderText(request.headers['user-agent'], USER_AGENT_MAX),
    requestId: request.id,
  };
}

export default fp(
  async function authPlugin(
    app,
    opts: {
      jwt: JwtConfig;
      /** Records a presented token that failed verification (never the token itself). */
      onRejected(request: FastifyRequest, action: string, reason: 'invalid_token' | 'invalid_claims'): Promise<void>;
    },
  ) {
    const jwt = opts.jwt;
    const verify = {
      algorithms: jwt.kind === 'secret' ? ['HS256'] : jwt.algorithms,
      // A configured iss/aud must also be present: fast-jwt only compares claims that exist.
      requiredClaims: ['exp', 'sub', 'org', 'role', ...(jwt.issuer ? ['iss'] : []), ...(jwt.audience ? ['aud'] : [])],
      ...(jwt.issuer ? { allowedIss: jwt.issuer } : {}),
      ...(jwt.audience ? { allowedAud: jwt.audience } : {}),
    };
    await app.register(fastifyJwt, {
      secret: jwt.kind === 'secret' ? jwt.secret : { public: jwt.publicKey },
      verify: verify as never,
    });
    app.decorateRequest('actor', null);

    async function authenticate(request: FastifyRequest, action: string): Promise<Actor> {
      if (!request.headers.authorization) throw new AppError('unauthorized', 'A valid bearer token is required');
      let payload: unknown;
      try {
        payload = await request.jwtVerify();
      } catch {
        await opts.onRejected(request, action, 'invalid_token');
        throw new AppError('unauthorized', 'A valid bearer token is required');
      }
      const actor = parseClaims(payload);
      if (!actor) {
        await opts.onRejected(request, action, 'invalid_claims');
        throw new AppError('unauthorized', 'The token claims are not valid');
      }
      return actor;
    }

    app.decorate('authorize', (roles: readonly ActorRole[], deniedAction: string) => {
      return async (request: FastifyRequest, _reply: FastifyReply) => {
        const actor = await authenticate(request, deniedAction);
        request.actor = actor;
        if (!roles.includes(actor.role as ActorRole)) {
          throw new AppError('forbidden', `Role ${actor.role} may not do this`, { action: deniedAction });
        }
      };
    });
  },
  { name: 'auth' },
);
