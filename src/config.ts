/**
 * Configuration: every variable of DESIGN section 8, read from the environment and validated
 * at start. A wrong value throws a ConfigError that names the variable, and the process stops.
 *
 * Invariant: in production (NODE_ENV=production) secrets come only from the environment; the
 * dev secrets file in DATA_DIR is never read or written there.
 */
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
    this.name = 'ConfigError';
  }
}

export type JwtConfig =
  | { kind: 'secret'; secret: string; issuer?: string; audience?: string }
  | { kind: 'public-key'; publicKey: string; algorithms: ('RS256' | 'ES256')[]; issuer?: string; audience?: string };

export interface Config {
  env: 'production' | 'development' | 'test';
  port: number;
  host: string;
  dataDir: string;
  /** PostgreSQL URL; undefined means embedded PGlite (in `pgliteDir`, or in memory when null). */
  databaseUrl?: string;
  pgliteDir: string | null;
  redisUrl?: string;
  jwt: JwtConfig;
  /** Raw key ring text `v2:<base64>,v1:<base64>`; parsed only by src/lib/crypto. */
  encryptionKeys: string;
  /** HMAC key (base64, 32+ bytes) for signed audit checkpoints; parsed only by src/lib/crypto. */
  auditCheckpointKey: string;
  /** How often the current audit heads are signed and logged (0 = only on demand). */
  auditCheckpointMinutes: number;
  smtpUrl?: string;
  mailFrom: string;
  mailDir: string;
  portalUrl: string;
  blobStore: 'postgres' | { kind: 's3'; bucket: string };
  logLevel: string;
  trustProxy: boolean;
  /** Default per-org storage allocation (admins may set their org's own). */
  storageAllocationBytes: number;
  /** Default per-org retention period for documents, in years. */
  retentionYears: number;
  /** Brute-force defence on POST /v1/external/sessions. */
  externalAccess: {
    perIpPerMinute: number;
    consecutiveFailuresToLock: number;
    lockMinutes: number;
    totalFailuresToLock: number;
  };
  /** Names of secrets that were generated for development (for the start-up warning). */
  devSecrets: string[];
}

type Env = Record<string, string | undefined>;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function nonEmpty(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

function parsePort(env: Env): number {
  const raw = nonEmpty(env, 'PORT');
  if (raw === undefined) return 3000;
  if (!/^\d+$/.test(raw) || Number(raw) > 65535) throw new ConfigError('PORT', 'must be an integer from 0 to 65535');
  return Number(raw);
}

function parseUrl(env: Env, name: string, protocols: string[]): string | undefined {
  const raw = nonEmpty(env, name);
  if (raw === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(name, 'is not a valid URL');
  }
  if (!protocols.includes(url.protocol)) {
    throw new ConfigError(name, `must use one of ${protocols.join(', ')}`);
  }
  return raw;
}

function parsePositiveInt(env: Env, name: string, fallback: number, max = Number.MAX_SAFE_INTEGER): number {
  const raw = nonEmpty(env, name);
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > max) throw new ConfigError(name, `must be a whole number from 1 to ${max}`);
  return Number(raw);
}

function parseBool(env: Env, name: string): boolean {
  const raw = nonEmpty(env, name);
  if (raw === undefined) return false;
  if (['1', 'true', 'yes'].includes(raw.toLowerCase())) return true;
  if (['0', 'false', 'no'].includes(raw.toLowerCase())) return false;
  throw new ConfigError(name, 'must be true or false');
}

/** Shape check only; the crypto module parses and owns the key material. */
const KEY_RING_PATTERN = /^v\d+:[A-Za-z0-9+/]{43}=(,v\d+:[A-Za-z0-9+/]{43}=)*$/;

function parseBlobStore(env: Env): Config['blobStore'] {
  const raw = nonEmpty(env, 'BLOB_STORE');
  if (raw === undefined || raw === 'postgres') return 'postgres';
  const m = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])\/?$/.exec(raw);
  if (!m) throw new ConfigError('BLOB_STORE', 'must be "postgres" or "s3://<bucket>"');
  return { kind: 's3', bucket: m[1]! };
}

interface DevSecrets {
  jwtSecret: string;
  encryptionKeys: string;
  auditCheckpointKey?: string;
}

/** Dev secrets live in DATA_DIR/dev-secrets.json, created on first start (never in production). */
function loadOrCreateDevSecrets(dataDir: string): DevSecrets {
  const file = path.join(dataDir, 'dev-secrets.json');
  if (existsSync(file)) {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as Partial<DevSecrets>;
    if (typeof parsed.jwtSecret === 'string' && typeof parsed.encryptionKeys === 'string') {
      if (typeof parsed.auditCheckpointKey !== 'string') {
        // Written by an older version: add the newer secret, keep the others.
        const upgraded = { ...parsed, auditCheckpointKey: randomBytes(32).toString('base64') } as DevSecrets;
        writeFileSync(file, JSON.stringify(upgraded, null, 2), { mode: 0o600 });
        return upgraded;
      }
      return { jwtSecret: parsed.jwtSecret, encryptionKeys: parsed.encryptionKeys, auditCheckpointKey: parsed.auditCheckpointKey };
    }
  }
  mkdirSync(dataDir, { recursive: true });
  const secrets: DevSecrets = {
    jwtSecret: randomBytes(32).toString('base64url'),
    encryptionKeys: `v1:${randomBytes(32).toString('base64')}`,
    auditCheckpointKey: randomBytes(32).toString('base64'),
  };
  writeFileSync(file, JSON.stringify(secrets, null, 2), { mode: 0o600 });
  return secrets;
}

function parseJwt(env: Env, dev: () => DevSecrets, devSecrets: string[]): JwtConfig {
  const issuer = nonEmpty(env, 'JWT_ISSUER');
  const audience = nonEmpty(env, 'JWT_AUDIENCE');
  const secret = nonEmpty(env, 'JWT_SECRET');
  const publicKey = nonEmpty(env, 'JWT_PUBLIC_KEY');
  if (secret && publicKey) throw new ConfigError('JWT_SECRET', 'set either JWT_SECRET or JWT_PUBLIC_KEY, not both');
  if (publicKey) {
    const pem = publicKey.replace(/\\n/g, '\n');
    if (!pem.includes('-----BEGIN PUBLIC KEY-----')) {
      throw new ConfigError('JWT_PUBLIC_KEY', 'must be a PEM "BEGIN PUBLIC KEY" block');
    }
    const algorithms: ('RS256' | 'ES256')[] = [];
    const raw = nonEmpty(env, 'JWT_ALGORITHM') ?? 'RS256';
    if (raw !== 'RS256' && raw !== 'ES256') throw new ConfigError('JWT_ALGORITHM', 'must be RS256 or ES256');
    algorithms.push(raw);
    return { kind: 'public-key', publicKey: pem, algorithms, issuer, audience };
  }
  if (secret) {
    if (Buffer.byteLength(secret) < 32) throw new ConfigError('JWT_SECRET', 'must be at least 32 bytes');
    return { kind: 'secret', secret, issuer, audience };
  }
  devSecrets.push('JWT_SECRET');
  return { kind: 'secret', secret: dev().jwtSecret, issuer, audience };
}

export interface LoadConfigOptions {
  /** Tests pass overrides without touching process.env. */
  overrides?: Partial<Config>;
}

export function loadConfig(env: Env = process.env, options: LoadConfigOptions = {}): Config {
  const nodeEnv = nonEmpty(env, 'NODE_ENV');
  const mode: Config['env'] = nodeEnv === 'production' ? 'production' : nodeEnv === 'test' ? 'test' : 'development';
  const dataDir = path.resolve(nonEmpty(env, 'DATA_DIR') ?? './data');
  const databaseUrl = parseUrl(env, 'DATABASE_URL', ['postgres:', 'postgresql:']);
  const devSecrets: string[] = [];
  let dev: DevSecrets | undefined;
  const getDev = (): DevSecrets => {
    if (mode === 'production') {
      // Unreachable by construction: production paths below throw first. Kept as a guard.
      throw new ConfigError('NODE_ENV', 'production never uses dev secrets');
    }
    dev ??= loadOrCreateDevSecrets(dataDir);
    return dev;
  };

  if (mode === 'production') {
    if (!nonEmpty(env, 'JWT_SECRET') && !nonEmpty(env, 'JWT_PUBLIC_KEY')) {
      throw new ConfigError('JWT_SECRET', 'production requires JWT_SECRET or JWT_PUBLIC_KEY');
    }
    if (!nonEmpty(env, 'ENCRYPTION_KEYS')) {
      throw new ConfigError('ENCRYPTION_KEYS', 'production requires ENCRYPTION_KEYS');
    }
    if (!nonEmpty(env, 'AUDIT_CHECKPOINT_KEY')) {
      throw new ConfigError('AUDIT_CHECKPOINT_KEY', 'production requires AUDIT_CHECKPOINT_KEY (base64 of 32 random bytes)');
    }
  }

  const jwt = parseJwt(env, getDev, devSecrets);
  let encryptionKeys = nonEmpty(env, 'ENCRYPTION_KEYS');
  if (encryptionKeys !== undefined) {
    if (!KEY_RING_PATTERN.test(encryptionKeys)) {
      throw new ConfigError('ENCRYPTION_KEYS', 'must look like "v2:<base64 of 32 bytes>,v1:<base64 of 32 bytes>"');
    }
  } else {
    devSecrets.push('ENCRYPTION_KEYS');
    encryptionKeys = getDev().encryptionKeys;
  }

  let auditCheckpointKey = nonEmpty(env, 'AUDIT_CHECKPOINT_KEY');
  if (auditCheckpointKey !== undefined) {
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(auditCheckpointKey) || Buffer.from(auditCheckpointKey, 'base64').length < 32) {
      throw new ConfigError('AUDIT_CHECKPOINT_KEY', 'must be base64 of at least 32 bytes');
    }
  } else {
    devSecrets.push('AUDIT_CHECKPOINT_KEY');
    auditCheckpointKey = getDev().auditCheckpointKey!;
  }

  const host = nonEmpty(env, 'HOST') ?? '127.0.0.1';
  const mailDir = path.resolve(nonEmpty(env, 'MAIL_DIR') ?? path.join(dataDir, 'mail'));
  const portalUrl = parseUrl(env, 'PORTAL_URL', ['http:', 'https:']) ?? 'http://localhost:3000/portal';
  const mailFrom = nonEmpty(env, 'MAIL_FROM') ?? 'SecureCare Messaging <no-reply@securecare.invalid>';
  if (!/@/.test(mailFrom)) throw new ConfigError('MAIL_FROM', 'must contain an email address');
  const logLevel = nonEmpty(env, 'LOG_LEVEL') ?? 'info';
  if (!LOG_LEVELS.includes(logLevel)) throw new ConfigError('LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}`);

  return {
    env: mode,
    port: parsePort(env),
    host,
    dataDir,
    databaseUrl,
    pgliteDir: path.join(dataDir, 'pglite'),
    redisUrl: parseUrl(env, 'REDIS_URL', ['redis:', 'rediss:']),
    jwt,
    encryptionKeys,
    auditCheckpointKey,
    auditCheckpointMinutes: nonEmpty(env, 'AUDIT_CHECKPOINT_MINUTES') === '0' ? 0 : parsePositiveInt(env, 'AUDIT_CHECKPOINT_MINUTES', 60, 10_080),
    smtpUrl: parseUrl(env, 'SMTP_URL', ['smtp:', 'smtps:']),
    mailFrom,
    mailDir,
    portalUrl,
    blobStore: parseBlobStore(env),
    logLevel,
    trustProxy: parseBool(env, 'TRUST_PROXY'),
    storageAllocationBytes: parsePositiveInt(env, 'STORAGE_ALLOCATION_BYTES', 10 * 1024 ** 3),
    retentionYears: parsePositiveInt(env, 'RETENTION_YEARS', 7, 100),
    externalAccess: {
      perIpPerMinute: parsePositiveInt(env, 'EXTERNAL_SESSION_RATE_LIMIT', 10, 1_000_000),
      consecutiveFailuresToLock: parsePositiveInt(env, 'LOCKOUT_CONSECUTIVE_FAILURES', 5, 1000),
      lockMinutes: parsePositiveInt(env, 'LOCKOUT_MINUTES', 15, 10_000),
      totalFailuresToLock: parsePositiveInt(env, 'LOCKOUT_TOTAL_FAILURES', 10, 1000),
    },
    devSecrets,
    ...options.overrides,
  };
}
