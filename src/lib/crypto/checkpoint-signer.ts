/**
 * Signed audit checkpoints: HMAC-SHA256 under a dedicated key (AUDIT_CHECKPOINT_KEY), never
 * the encryption ring, so publishing checkpoints reveals nothing about data keys and a
 * checkpoint cannot be forged without that key.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export interface CheckpointPayload {
  orgId: string;
  seq: number;
  hash: string;
  at: string;
}

const canonical = (p: CheckpointPayload) => JSON.stringify(['securecare-audit-checkpoint-v1', p.orgId, p.seq, p.hash, p.at]);

export function createCheckpointSigner(keyBase64: string) {
  const key = Buffer.from(keyBase64, 'base64');
  if (key.length < 32) throw new Error('AUDIT_CHECKPOINT_KEY must be at least 32 bytes of base64');
  const sign = (p: CheckpointPayload) => createHmac('sha256', key).update(canonical(p)).digest('hex');
  return {
    sign,
    verify(p: CheckpointPayload, signature: string): boolean {
      const expected = Buffer.from(sign(p), 'hex');
      const given = /^[0-9a-f]{64}$/.test(signature) ? Buffer.from(signature, 'hex') : Buffer.alloc(32);
      return timingSafeEqual(expected, given) && /^[0-9a-f]{64}$/.test(signature);
    },
  };
}

export type CheckpointSigner = ReturnType<typeof createCheckpointSigner>;
