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

/** BLOB_STORE=s3://bucket and the S3_* variables (src/modules/documents/s3-blob-store.ts). */
export interface S3BlobStoreConfig {
  kind: 's3';
  bucket: string;
  /** S3_ENDPOINT: an S3-compatible server (MinIO, Ceph, s3rver); undefined means AWS itself. */
  endpoint?: string;
  /** S3_REGION (default us-east-1). */
  region: string;
  /** S3_FORCE_PATH_STYLE: the bucket in the path (`http://host/bucket/key`), as most S3-compatible servers want. */
  forcePathStyle: boolean;
  /**
   * AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN) when set; otherwise the AWS
   * SDK's default chain (shared config and credentials files, SSO, web identity, container or
   * instance roles).
   */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

export interface Config {
  env: 'production' | 'development' | 'test';
  port: number;
  host: string;
  dataDir: string;
  /** PostgreSQL URL; undefined means embedded PGlite (in `pgliteDir`, or in memory when null). */
  databaseUrl?: string;
  /** DATABASE_POOL_SIZE: connections per instance (PostgreSQL only). */
  databasePoolSize: number;
  /**
   * DATABASE_PREPARED_STATEMENTS: postgres.js prepares every statement once per connection
   * (the default, and what the hot paths rely on). Turn it off behind a pooler in transaction
   * mode that cannot keep prepared statements (PgBouncer before 1.21, or without
   * max_prepared_statements).
   */
  databasePreparedStatements: boolean;
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
  /** BLOB_STORE: where sealed document content lives (PostgreSQL rows, or one S3 object per document). */
  blobStore: 'postgres' | S3BlobStoreConfig;
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
  /** BENCH_MODE: bench-only routes for `npm run bench`; refused in production. */
  benchMode: boolean;
  /** BENCH_AUDIT_CHAIN=off (bench mode only): audit events without the hash chain, to price it. */
  auditChain: boolean;
  /** WEBHOOK_ALLOW_PRIVATE: let webhooks reach private, loopback and link-local addresses. */
  webhookAllowPrivate: boolean;
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

const S3_VARIABLES = ['S3_ENDPOINT', 'S3_REGION', 'S3_FORCE_PATH_STYLE'] as const;

function parseBlobStore(env: Env): Config['blobStore'] {
  const raw = nonEmpty(env, 'BLOB_STORE');
  if (raw === undefined || raw === 'postgres') {
    // An S3 setting without an S3 store is a mistake (content would silently go to PostgreSQL).
    const stray = S3_VARIABLES.find((name) => nonEmpty(env, name) !== undefined);
    if (stray) throw new ConfigError(stray, 'only applies with BLOB_STORE=s3://<bucket>');
    return 'postgres';
  }
  const m = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])\/?$/.exec(raw);
  if (!m) throw new ConfigError('BLOB_STORE', 'must be "postgres" or "s3://<bucket>"');
  return {
    kind: 's3',
    bucket: m[1]!,
    endpoint: parseS3Endpoint(env),
    region: parseS3Region(env),
    forcePathStyle: parseBool(env, 'S3_FORCE_PATH_STYLE'),
    credentials: parseAwsCredentials(env),
  };
}

/** An origin only: the SDK puts the bucket in the host or the path itself. */
function parseS3Endpoint(env: Env): string | undefined {
  const raw = parseUrl(env, 'S3_ENDPOINT', ['http:', 'https:']);
  if (raw === undefined) return undefined;
  const url = new URL(raw);
  if (url.username || url.password) {
    throw new ConfigError('S3_ENDPOINT', 'must not carry credentials (use AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)');
  }
  if (url.pathname !== '/' || url.search || url.hash) {
    throw new ConfigError('S3_ENDPOINT', 'must be a scheme, host and optional port only, e.g. http://127.0.0.1:9000');
  }
  return url.origin;
}

function parseS3Region(env: Env): string {
  const raw = nonEmpty(env, 'S3_REGION');
  if (raw === undefined) return 'us-east-1';
  // AWS names (eu-central-1) and what S3-compatible servers use (auto, garage, us-east-1).
  if (!/^[a-z0-9]+(-[a-z0-9]+)*$/.test(raw) || raw.length > 64) {
    throw new ConfigError('S3_REGION', 'must be a region name such as us-east-1 (lower-case letters, digits and dashes)');
  }
  return raw;
}

function parseAwsCredentials(env: Env): S3BlobStoreConfig['credentials'] {
  const accessKeyId = nonEmpty(env, 'AWS_ACCESS_KEY_ID');
  const secretAccessKey = nonEmpty(env, 'AWS_SECRET_ACCESS_KEY');
  const sessionToken = nonEmpty(env, 'AWS_SESSION_TOKEN');
  if (accessKeyId === undefined && secretAccessKey === undefined) {
    if (sessionToken !== undefined) throw new ConfigError('AWS_SESSION_TOKEN', 'needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY');
    return undefined; // the SDK's default credential chain
  }
  if (accessKeyId === undefined) throw new ConfigError('AWS_ACCESS_KEY_ID', 'must be set together with AWS_SECRET_ACCESS_KEY');
  if (secretAccessKey === undefined) throw new ConfigError('AWS_SECRET_ACCESS_KEY', 'must be set together with AWS_ACCESS_KEY_ID');
  return { accessKeyId, secretAccessKey, ...(sessionToken !== undefined ? { sessionToken } : {}) };
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

function parseBench(env: Env, mode: Config['env']): { benchMode: boolean; auditChain: boolean } {
  const benchMode = parseBool(env, 'BENCH_MODE');
  if (benchMode && mode === 'production') throw new ConfigError('BENCH_MODE', 'is never allowed in production');
  const chain = nonEmpty(env, 'BENCH_AUDIT_CHAIN') ?? 'on';
  if (chain !== 'on' && chain !== 'off') throw new ConfigError('BENCH_AUDIT_CHAIN', 'must be on or off');
  if (chain === 'off' && !benchMode) throw new ConfigError('BENCH_AUDIT_CHAIN', 'off is allowed only with BENCH_MODE=true');
  return { benchMode, auditChain: chain === 'on' };
}

export function loadConfig(env: Env = process.env, options: LoadConfigOptions = {}): Config {
  const nodeEnv = nonEmpty(env, 'NODE_ENV') ?? 'development';
  // Anything else ('prod', 'Production', 'staging') is refused rather than taken for
  // development, which would generate dev secrets and allow bench-only routes.
  if (nodeEnv !== 'production' && nodeEnv !== 'test' && nodeEnv !== 'development') {
    throw new ConfigError('NODE_ENV', 'must be production, development or test');
  }
  const mode: Config['env'] = nodeEnv;
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
    databasePoolSize: parsePositiveInt(env, 'DATABASE_POOL_SIZE', 10, 200),
    databasePreparedStatements: nonEmpty(env, 'DATABASE_PREPARED_STATEMENTS') === undefined ? true : parseBool(env, 'DATABASE_PREPARED_STATEMENTS'),
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
    webhookAllowPrivate: parseBool(env, 'WEBHOOK_ALLOW_PRIVATE'),
    ...parseBench(env, mode),
    devSecrets,
    ...options.overrides,
  };
}
