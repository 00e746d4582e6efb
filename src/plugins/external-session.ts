/**
 * External recipients' sessions: the `__Host-sc_ext` cookie (HttpOnly, Secure,
 * SameSite=Strict, Path=/, no Max-Age: it dies with the browser session), or the same value
 * as a bearer token for non-browser clients. External routes accept nothing else, and a
 * session token is not a JWT, so it never opens a staff or patron route.
 */
import fp from 'fastify-plugin';
import type { FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';
import { AppError } from '../lib/errors.js';
import type { Actor } from '../lib/context.js';

export const SESSION_COOKIE = '__Host-sc_ext';

declare module 'fastify' {
  interface FastifyInstance {
    authorizeExternal: onRequestHookHandler;
  }
}

export function sessionTokenOf(request: FastifyRequest): string | undefined {
  const auth = request.headers.authorization;
  if (auth?.startsWith('Bearer ')) return auth.slice(7).trim();
  const cookies = request.headers.cookie ?? '';
  for (const part of cookies.split(';')) {
    const [name, ...rest] = part.trim().split('=');
    if (name === SESSION_COOKIE) return rest.join('=');
  }
  return undefined;
}

export function sessionCookie(token: string): string {
  return `${SESSION_COOKIE}=${token}; Path=/; HttpOnly; Secure; SameSite=Strict`;
}

export const clearedSessionCookie = `${SESSION_COOKIE}=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0`;

export default fp(
  async function externalSessionPlugin(app, opts: { authenticate(token: string): Promise<Actor | null> }) {
    app.decorate('authorizeExternal', async (request: FastifyRequest, _reply: FastifyReply) => {
      const token = sessionTokenOf(request);
      const actor = token && /^[A-Za-z0-9_-]{43}$/.test(token) ? await opts.authenticate(token) : null;
      if (!actor) throw new AppError('unauthorized', 'The session has ended or is not valid; open the link again');
      request.actor = actor;
    });
  },
  { name: 'external-session', dependencies: ['auth'] },
);
