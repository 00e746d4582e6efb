import t from 'tap';
import { hkdfSync, randomBytes } from 'node:crypto';
import { IntegrityError, KeyRing, UnknownKeyVersionError } from '../../../src/lib/crypto/index.js';
import { __testing } from '../../../src/lib/crypto/key-ring.js';

const key = () => randomBytes(32).toString('base64');

t.test('an envelope opens only with its own context, and seals fields bound to their AAD', async (t) => {
  const ring = KeyRing.parse(`v1:${key()}`);
  const { envelope, dataKey } = ring.createEnvelope('thread:o:1');
  t.equal(envelope.salt.length, 32, '32-byte per-row salt');
  t.equal(envelope.keyVersion, 1);
  const sealed = dataKey.sealText('secret subject', 'thread:o:1:subject');
  t.notOk(sealed.includes(Buffer.from('secret subject')), 'ciphertext does not contain the plaintext');
  const reopened = ring.openEnvelope(envelope, 'thread:o:1');
  t.equal(reopened.openText(sealed, 'thread:o:1:subject'), 'secret subject');
  t.throws(() => reopened.openText(sealed, 'thread:o:2:subject'), IntegrityError, 'another row identity fails');
  t.throws(() => ring.openEnvelope(envelope, 'thread:o:2'), IntegrityError, 'another context cannot unwrap the key');
  t.not(dataKey.sealText('same', 'a').toString('hex'), dataKey.sealText('same', 'a').toString('hex'), 'fresh nonce per seal');
});

t.test('a flipped byte anywhere fails authentication', async (t) => {
  const ring = KeyRing.parse(`v1:${key()}`);
  const { dataKey } = ring.createEnvelope('c');
  const sealed = dataKey.sealText('hello world', 'aad');
  for (let i = 0; i < sealed.length; i++) {
    const copy = Buffer.from(sealed);
    copy[i] = copy[i]! ^ 0x01;
    t.throws(() => dataKey.openText(copy, 'aad'), IntegrityError, `byte ${i}`);
  }
  t.throws(() => dataKey.openText(sealed.subarray(0, 10), 'aad'), IntegrityError, 'a truncated ciphertext fails');
});

t.test('the secret alone, or the salt alone, is not enough', async (t) => {
  const secret = key();
  const ring = KeyRing.parse(`v1:${secret}`);
  const { envelope, dataKey } = ring.createEnvelope('ctx');
  const sealed = dataKey.sealText('phi', 'aad');
  const otherRing = KeyRing.parse(`v1:${key()}`);
  t.throws(() => otherRing.openEnvelope(envelope, 'ctx'), IntegrityError, 'the right salt with another secret fails');
  const wrongSalt = { ...envelope, salt: randomBytes(32) };
  t.throws(() => ring.openEnvelope(wrongSalt, 'ctx'), IntegrityError, 'the right secret with another salt fails');
  t.equal(ring.openEnvelope(envelope, 'ctx').openText(sealed, 'aad'), 'phi');
});

t.test('rotation: a v2,v1 ring reads v1 rows, writes v2, and re-wraps without changing the data key', async (t) => {
  const v1 = key();
  const old = KeyRing.parse(`v1:${v1}`);
  const { envelope, dataKey } = old.createEnvelope('ctx');
  const sealed = dataKey.sealText('kept', 'aad');
  const rotated = KeyRing.parse(`v2:${key()},v1:${v1}`);
  t.equal(rotated.newestVersion, 2);
  t.equal(rotated.openEnvelope(envelope, 'ctx').openText(sealed, 'aad'), 'kept', 'v1 rows still read');
  t.equal(rotated.createEnvelope('new').envelope.keyVersion, 2, 'new rows use v2');
  const rewrapped = rotated.rewrap(envelope, 'ctx');
  t.equal(rewrapped.keyVersion, 2);
  t.same(rewrapped.salt, envelope.salt, 'the salt stays');
  t.equal(rotated.openEnvelope(rewrapped, 'ctx').openText(sealed, 'aad'), 'kept', 'data sealed before the re-wrap still reads');
  const v2Only = KeyRing.parse(`v2:${key()}`);
  t.throws(() => v2Only.openEnvelope(envelope, 'ctx'), UnknownKeyVersionError, 'a ring without v1 names the missing version');
});

t.test('parse refuses malformed rings', async (t) => {
  t.throws(() => KeyRing.parse('v1:short'), /32 bytes/);
  t.throws(() => KeyRing.parse(`k1:${key()}`), /v<N>/);
  const k = key();
  t.throws(() => KeyRing.parse(`v1:${k},v1:${k}`), /twice/);
});

t.test('fingerprints are keyed, stable per version, and compared in constant time', async (t) => {
  const ring = KeyRing.parse(`v1:${key()}`);
  const fp = ring.fingerprint('{"a":1}');
  t.match(fp, /^v1:[0-9a-f]{64}$/);
  t.ok(ring.fingerprintMatches(fp, '{"a":1}'));
  t.notOk(ring.fingerprintMatches(fp, '{"a":2}'));
  t.not(KeyRing.parse(`v1:${key()}`).fingerprint('{"a":1}'), fp, 'another secret gives another fingerprint');
  t.notOk(ring.fingerprintMatches('v9:00', '{"a":1}'), 'an unknown version never matches');
});

t.test('the HMAC-built HKDF gives exactly the bytes of hkdfSync (stored envelopes stay readable)', async (t) => {
  const { hkdfSha256 } = __testing;
  for (let i = 0; i < 200; i++) {
    const ikm = randomBytes(32);
    const salt = randomBytes(i % 10 === 0 ? 0 : 32);
    const info = `securecare/kek/v1/thread:org-${i}:${randomBytes(8).toString('hex')}${i % 7 === 0 ? ':ünïcødé' : ''}`;
    t.same(hkdfSha256(ikm, salt, info), Buffer.from(hkdfSync('sha256', ikm, salt, info, 32)), `input ${i}`);
  }
});

t.test('pooled nonces are 96-bit, independent copies, and never repeat', async (t) => {
  const { freshNonce } = __testing;
  const seen = new Set<string>();
  const first = freshNonce();
  const copy = Buffer.from(first);
  for (let i = 0; i < 5000; i++) {
    const nonce = freshNonce();
    t.equal(nonce.length, 12);
    seen.add(nonce.toString('hex'));
  }
  t.equal(seen.size, 5000, '5,000 nonces across many refills, all distinct');
  t.same(first, copy, 'a handed-out nonce is not overwritten when the pool refills');
});
