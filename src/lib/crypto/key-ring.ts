/**
 * The key ring and envelope encryption (DESIGN section 5). This folder is the only code that
 * touches key material; see README.md beside this file for the invariants.
 */
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, randomFillSync, timingSafeEqual } from 'node:crypto';

const KEY_BYTES = 32;
const SALT_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
/** Format byte of a sealed field, so the layout can change without guessing. */
const FIELD_FORMAT_V1 = 1;
const KEK_INFO_PREFIX = 'securecare/kek/v1/';
const FINGERPRINT_INFO = 'securecare/fingerprint/v1';

/** Thrown when a ciphertext or wrapped key fails authentication. Never carries plaintext. */
export class IntegrityError extends Error {
  /** Ids (never content) of the row that failed, filled in by the service that decrypted it. */
  target: IntegrityTarget = {};

  constructor(readonly what: string) {
    super(`integrity check failed: ${what}`);
    this.name = 'IntegrityError';
  }
}

export interface IntegrityTarget {
  recordKind?: 'customer' | 'volunteer';
  recordId?: string;
  threadId?: string;
  messageId?: string;
  documentId?: string;
}

/** Runs a decryption and tags any integrity failure with the row it concerns. */
export function withIntegrityTarget<T>(target: IntegrityTarget, decrypt: () => T): T {
  try {
    return decrypt();
  } catch (error) {
    if (error instanceof IntegrityError) error.target = { ...error.target, ...target };
    throw error;
  }
}

/** Thrown when a stored row names a key version the configured ring does not hold. */
export class UnknownKeyVersionError extends Error {
  constructor(readonly version: number) {
    super(`key version v${version} is not in ENCRYPTION_KEYS`);
    this.name = 'UnknownKeyVersionError';
  }
}

/**
 * What a row stores for its envelope: its own random salt, the data key wrapped by the
 * key-encryption key, and the ring version that wrapped it.
 */
export interface StoredEnvelope {
  salt: Buffer;
  wrappedKey: Buffer;
  keyVersion: number;
}

/**
 * HKDF-SHA256 (RFC 5869) for one 32-byte output block, written with two HMACs: the same bytes
 * as `hkdfSync('sha256', ikm, salt, info, 32)` (test/lib/crypto proves it on random inputs),
 * at about a fifth of its cost, because hkdfSync builds KeyObjects on every call (~15 µs here,
 * once per opened envelope, so once per message sent or listed).
 */
function hkdfSha256(ikm: Buffer, salt: Buffer, info: string): Buffer {
  const prk = createHmac('sha256', salt.length > 0 ? salt : Buffer.alloc(32)).update(ikm).digest();
  return createHmac('sha256', prk).update(info, 'utf8').update(Buffer.of(1)).digest();
}

/**
 * Nonces come from a pool filled by the CSPRNG 512 at a time: a small randomBytes() call costs
 * ~3 µs, a slice of the pool almost nothing. Each 96-bit nonce is handed out once, copied, and
 * the pool is refilled before any byte of it is used again. Nonces are public (they are stored
 * beside the ciphertext), so the pool holds nothing secret.
 */
const noncePool = Buffer.alloc(NONCE_BYTES * 512);
let nonceOffset = noncePool.length;
function freshNonce(): Buffer {
  if (nonceOffset + NONCE_BYTES > noncePool.length) {
    randomFillSync(noncePool);
    nonceOffset = 0;
  }
  const nonce = Buffer.from(noncePool.subarray(nonceOffset, nonceOffset + NONCE_BYTES));
  nonceOffset += NONCE_BYTES;
  return nonce;
}

export const __testing = { hkdfSha256, freshNonce };

function aesGcmSeal(key: Buffer, plaintext: Buffer, aad: Buffer): Buffer {
  const nonce = freshNonce();
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(aad);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([nonce, body, cipher.getAuthTag()]);
}

function aesGcmOpen(key: Buffer, sealed: Buffer, aad: Buffer, what: string): Buffer {
  if (sealed.length < NONCE_BYTES + TAG_BYTES) throw new IntegrityError(what);
  const nonce = sealed.subarray(0, NONCE_BYTES);
  const tag = sealed.subarray(sealed.length - TAG_BYTES);
  const body = sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES);
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, nonce);
    decipher.setAAD(aad);
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(body), decipher.final()]);
  } catch {
    throw new IntegrityError(what);
  }
}

/**
 * An unwrapped data key, usable only through seal/open. The raw key never leaves this object,
 * and callers must not keep it beyond the request that opened it.
 */
export class DataKey {
  readonly #key: Buffer;

  /** @internal constructed only by KeyRing */
  constructor(key: Buffer) {
    this.#key = key;
  }

  /** Seals a UTF-8 string; `aad` binds the row identity (org, thread/record, message, field). */
  sealText(plaintext: string, aad: string): Buffer {
    return Buffer.concat([Buffer.of(FIELD_FORMAT_V1), aesGcmSeal(this.#key, Buffer.from(plaintext, 'utf8'), Buffer.from(aad, 'utf8'))]);
  }

  openText(sealed: Buffer, aad: string): string {
    if (sealed[0] !== FIELD_FORMAT_V1) throw new IntegrityError('field format');
    return aesGcmOpen(this.#key, sealed.subarray(1), Buffer.from(aad, 'utf8'), 'field').toString('utf8');
  }

  sealOptional(plaintext: string | null | undefined, aad: string): Buffer | null {
    return plaintext === null || plaintext === undefined ? null : this.sealText(plaintext, aad);
  }

  openOptional(sealed: Buffer | null, aad: string): string | null {
    return sealed === null ? null : this.openText(sealed, aad);
  }

  /** Seals one file chunk with a caller-derived nonce (see chunked-cipher.ts); returns ct || tag. */
  sealChunk(plaintext: Buffer, nonce: Buffer, aad: Buffer): Buffer {
    const cipher = createCipheriv('aes-256-gcm', this.#key, nonce);
    cipher.setAAD(aad);
    return Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  }

  openChunk(sealed: Buffer, nonce: Buffer, aad: Buffer): Buffer {
    if (sealed.length < TAG_BYTES) throw new IntegrityError('chunk');
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#key, nonce);
      decipher.setAAD(aad);
      decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
      return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES)), decipher.final()]);
    } catch {
      throw new IntegrityError('chunk');
    }
  }
}

export class KeyRing {
  /** Newest first. */
  readonly #keys: Map<number, Buffer>;
  readonly newestVersion: number;

  private constructor(keys: Map<number, Buffer>, newestVersion: number) {
    this.#keys = keys;
    this.newestVersion = newestVersion;
  }

  /** Parses `v2:<base64>,v1:<base64>`; the first entry is the one new writes use. */
  static parse(text: string): KeyRing {
    const keys = new Map<number, Buffer>();
    let newest: number | undefined;
    for (const part of text.split(',')) {
      const m = /^v(\d+):(.+)$/.exec(part.trim());
      if (!m) throw new Error('ENCRYPTION_KEYS: each entry must be v<N>:<base64>');
      const version = Number(m[1]);
      const key = Buffer.from(m[2]!, 'base64');
      if (key.length !== KEY_BYTES) throw new Error(`ENCRYPTION_KEYS: v${version} must be 32 bytes of base64`);
      if (keys.has(version)) throw new Error(`ENCRYPTION_KEYS: v${version} appears twice`);
      keys.set(version, key);
      newest ??= version;
    }
    if (newest === undefined) throw new Error('ENCRYPTION_KEYS: empty');
    return new KeyRing(keys, newest);
  }

  get versions(): number[] {
    return [...this.#keys.keys()];
  }

  #secret(version: number): Buffer {
    const secret = this.#keys.get(version);
    if (!secret) throw new UnknownKeyVersionError(version);
    return secret;
  }

  /** KEK = HKDF-SHA256(application secret, per-row salt, context). Lives only for one call. */
  #kek(version: number, salt: Buffer, context: string): Buffer {
    return hkdfSha256(this.#secret(version), salt, KEK_INFO_PREFIX + context);
  }

  /** A fresh salt and data key for a new row, wrapped under the newest version. */
  createEnvelope(context: string): { envelope: StoredEnvelope; dataKey: DataKey } {
    const salt = randomBytes(SALT_BYTES);
    const key = randomBytes(KEY_BYTES);
    const version = this.newestVersion;
    const wrappedKey = aesGcmSeal(this.#kek(version, salt, context), key, Buffer.from(context, 'utf8'));
    return { envelope: { salt, wrappedKey, keyVersion: version }, dataKey: new DataKey(key) };
  }

  /** Unwraps a row's data key; the context must match the one it was created with. */
  openEnvelope(envelope: StoredEnvelope, context: string): DataKey {
    const kek = this.#kek(envelope.keyVersion, envelope.salt, context);
    return new DataKey(aesGcmOpen(kek, envelope.wrappedKey, Buffer.from(context, 'utf8'), 'wrapped key'));
  }

  /** Re-wraps a data key under the newest version without changing the data key itself. */
  rewrap(envelope: StoredEnvelope, context: string): StoredEnvelope {
    const kek = this.#kek(envelope.keyVersion, envelope.salt, context);
    const key = aesGcmOpen(kek, envelope.wrappedKey, Buffer.from(context, 'utf8'), 'wrapped key');
    const version = this.newestVersion;
    const wrappedKey = aesGcmSeal(this.#kek(version, envelope.salt, context), key, Buffer.from(context, 'utf8'));
    return { salt: envelope.salt, wrappedKey, keyVersion: version };
  }

  /**
   * A keyed fingerprint (HMAC-SHA256 under a key derived from the newest secret) for comparing
   * request bodies without storing them; returned as `v<N>:<hex>` so the version stays known.
   */
  fingerprint(data: string, version = this.newestVersion): string {
    const key = Buffer.from(hkdfSync('sha256', this.#secret(version), Buffer.alloc(0), FINGERPRINT_INFO, KEY_BYTES));
    return `v${version}:${createHmac('sha256', key).update(data).digest('hex')}`;
  }

  /** Constant-time comparison of a stored fingerprint with the one of `data`. */
  fingerprintMatches(stored: string, data: string): boolean {
    const m = /^v(\d+):/.exec(stored);
    if (!m || !this.#keys.has(Number(m[1]))) return false;
    const fresh = Buffer.from(this.fingerprint(data, Number(m[1])));
    const old = Buffer.from(stored);
    return fresh.length === old.length && timingSafeEqual(fresh, old);
  }
}
