/**
 * Webhook signing in the Standard Webhooks format (https://www.standardwebhooks.com), so
 * receivers can use the existing verifier libraries:
 *
 *   secret             = "whsec_" + base64(32 random bytes)
 *   signed content     = `${webhook-id}.${webhook-timestamp}.${body}`
 *   webhook-signature  = "v1," + base64(HMAC-SHA256(base64-decoded secret, signed content))
 *
 * Invariant: the secret is only ever held sealed at rest (webhook_endpoints.secret_sealed)
 * and in memory for the length of one signing; it is returned to the caller once, when the
 * endpoint is registered.
 */
import { createHmac, randomBytes } from 'node:crypto';

const PREFIX = 'whsec_';

export function generateWebhookSecret(): string {
  return PREFIX + randomBytes(32).toString('base64');
}

export function signWebhook(secret: string, messageId: string, timestampSeconds: number, body: string): string {
  if (!secret.startsWith(PREFIX)) throw new Error('not a webhook secret');
  const key = Buffer.from(secret.slice(PREFIX.length), 'base64');
  const mac = createHmac('sha256', key).update(`${messageId}.${timestampSeconds}.${body}`).digest('base64');
  return `v1,${mac}`;
}
