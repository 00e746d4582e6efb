/**
 * Encryption CPU per message, in process: what a send costs in crypto, the thread's envelope
 * opened (HKDF-SHA256 + AES-256-GCM unwrap of the data key) and the message row built (body
 * and author name sealed with AES-256-GCM), over many iterations, as microseconds per message.
 */
import { randomBytes } from 'node:crypto';
import { KeyRing, threadKeyContext } from '../../src/lib/crypto/index.js';
import { buildMessageRow } from '../../src/modules/messages/message-codec.js';

export async function runCryptoBench(): Promise<object[]> {
  const ring = KeyRing.parse(`v1:${randomBytes(32).toString('base64')}`);
  const thread = { orgId: 'org-bench', id: '01900000-0000-7000-8000-000000000001' };
  const { envelope } = ring.createEnvelope(threadKeyContext(thread.orgId, thread.id));
  const actor = { role: 'staff' as const, id: 'staff-bench', orgId: thread.orgId, name: 'Bench Staff', rec: null };
  const body = 'Your appointment is confirmed for Tuesday. '.repeat(24).slice(0, 1000);
  const run = (n: number) => {
    for (let i = 0; i < n; i++) {
      const key = ring.openEnvelope(envelope, threadKeyContext(thread.orgId, thread.id));
      buildMessageRow(key, thread, actor, body, new Date());
    }
  };
  run(5_000); // warm-up
  const n = 50_000;
  // CPU time of this process (user + system), not wall time: the target is CPU per message,
  // and another process on the two cores must not count against it.
  const started = process.cpuUsage();
  run(n);
  const used = process.cpuUsage(started);
  const micros = (used.user + used.system) / n;
  return [{ scenario: 'message-encryption (1 KB body)', microsPerMessage: Number(micros.toFixed(2)), target: '< 25 µs', met: micros < 25 }];
}
