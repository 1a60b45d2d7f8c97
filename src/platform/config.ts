import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';

/**
 * Configuration comes from the environment, optionally from a JSON file named by
 * FEN_CONFIG_FILE (the same names as keys; the environment wins). It is
 * validated once at start, and a bad value stops Fen with a message naming it.
 */
export const settingDescriptions = {
  DATABASE_URL: 'PostgreSQL 15+ connection URL. Unset: Fen starts an embedded PostgreSQL under FEN_DATA_DIR.',
  FEN_DATA_DIR: 'Where Fen keeps local state: embedded database, master key file, demo.json. Default .fen',
  HOST: 'Address the HTTP server binds to. Default 127.0.0.1',
  PORT: 'HTTP port. Default 8080',
  FEN_PUBLIC_URL: 'Base URL that payers and merchants reach Fen at. Default http://HOST:PORT',
  FEN_MASTER_KEY: 'AES-256 master key for secrets at rest (64 hex chars or base64). Unset: a key file in FEN_DATA_DIR.',
  FEN_MASTER_KEYS_PREVIOUS: 'Comma-separated earlier master keys, still accepted for reading during rotation.',
  LOG_LEVEL: 'trace, debug, info, warn, error or silent. Default info',
  FEN_TLS_CERT: 'Path to a PEM certificate; with FEN_TLS_KEY, Fen serves HTTPS and sends HSTS.',
  FEN_TLS_KEY: 'Path to the PEM private key for FEN_TLS_CERT.',
  FEN_DB_POOL_SIZE: 'Connections per process to PostgreSQL. Default 10',
  FEN_WORKER_CONCURRENCY: 'Jobs a worker process runs at once. Default 4',
  FEN_DEMO: 'Create demo merchant, app and operator on start (start role only). Default true',
  FEN_REFUND_FEE_POLICY: 'pro_rata (the fee is returned in proportion to each refund) or kept. Default pro_rata',
  FEN_EXCEPTION_AUTO_REFUND: 'Refund paid-after-close, duplicate and wrong-amount payments automatically. Default true',
  FEN_SIMULATOR_PORT: 'Port of the Alipay simulator (fen start, fen sim); WeChat Pay and UnionPay take the next two. Default PORT + 1',
  FEN_SIMULATOR_TIME_SCALE: 'Speeds up the simulators\' retry schedules (0.01: four minutes become 2.4 s). Default 0.01',
  FEN_CONFIG_FILE: 'Optional JSON file with any of these settings.',
} as const;

const booleanText = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((value) => value === 'true' || value === '1' || value === 'yes');

const configSchema = z.object({
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must start with postgres:// or postgresql://')
    .optional(),
  FEN_DATA_DIR: z.string().min(1).default('.fen'),
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  FEN_PUBLIC_URL: z.url().optional(),
  FEN_MASTER_KEY: z.string().min(1).optional(),
  FEN_MASTER_KEYS_PREVIOUS: z.string().optional(),
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  FEN_TLS_CERT: z.string().optional(),
  FEN_TLS_KEY: z.string().optional(),
  FEN_DB_POOL_SIZE: z.coerce.number().int().min(1).max(200).default(10),
  FEN_WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(4),
  FEN_DEMO: booleanText.default(true),
  FEN_REFUND_FEE_POLICY: z.enum(['pro_rata', 'kept']).default('pro_rata'),
  FEN_EXCEPTION_AUTO_REFUND: booleanText.default(true),
  FEN_SIMULATOR_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  FEN_SIMULATOR_TIME_SCALE: z.coerce.number().positive().max(1).default(0.01),
});

export type RawConfig = z.infer<typeof configSchema>;

export interface FenConfig {
  databaseUrl: string | undefined;
  dataDirectory: string;
  host: string;
  port: number;
  publicUrl: string;
  masterKey: string | undefined;
  previousMasterKeys: string[];
  logLevel: RawConfig['LOG_LEVEL'];
  tls: { certificatePath: string; keyPath: string } | undefined;
  databasePoolSize: number;
  workerConcurrency: number;
  demo: boolean;
  refundFeePolicy: 'pro_rata' | 'kept';
  exceptionAutoRefund: boolean;
  simulator: { port: number; timeScale: number };
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

function readConfigFile(filePath: string): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(readFileSync(filePath, 'utf8'));
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new ConfigError(`${filePath}: the config file must hold one JSON object`);
    }
    return parsed as Record<string, unknown>;
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(`${filePath}: cannot read the config file: ${(error as Error).message}`);
  }
}

export function loadConfig(environment: Record<string, string | undefined> = process.env): FenConfig {
  const fromFile = environment.FEN_CONFIG_FILE ? readConfigFile(environment.FEN_CONFIG_FILE) : {};
  const merged: Record<string, unknown> = { ...fromFile };
  for (const key of Object.keys(settingDescriptions)) {
    const value = environment[key];
    if (value !== undefined && value !== '') merged[key] = value;
  }
  const parsed = configSchema.safeParse(merged);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `  ${issue.path.join('.')}: ${issue.message}`).join('\n');
    throw new ConfigError(`invalid configuration:\n${problems}`);
  }
  const raw = parsed.data;
  if (Boolean(raw.FEN_TLS_CERT) !== Boolean(raw.FEN_TLS_KEY)) {
    throw new ConfigError('invalid configuration:\n  FEN_TLS_CERT and FEN_TLS_KEY must be set together');
  }
  const scheme = raw.FEN_TLS_CERT ? 'https' : 'http';
  return {
    databaseUrl: raw.DATABASE_URL,
    dataDirectory: path.resolve(raw.FEN_DATA_DIR),
    host: raw.HOST,
    port: raw.PORT,
    publicUrl: (raw.FEN_PUBLIC_URL ?? `${scheme}://${raw.HOST}:${raw.PORT}`).replace(/\/$/, ''),
    masterKey: raw.FEN_MASTER_KEY,
    previousMasterKeys: (raw.FEN_MASTER_KEYS_PREVIOUS ?? '').split(',').map((key) => key.trim()).filter(Boolean),
    logLevel: raw.LOG_LEVEL,
    tls: raw.FEN_TLS_CERT && raw.FEN_TLS_KEY ? { certificatePath: raw.FEN_TLS_CERT, keyPath: raw.FEN_TLS_KEY } : undefined,
    databasePoolSize: raw.FEN_DB_POOL_SIZE,
    workerConcurrency: raw.FEN_WORKER_CONCURRENCY,
    demo: raw.FEN_DEMO,
    refundFeePolicy: raw.FEN_REFUND_FEE_POLICY,
    exceptionAutoRefund: raw.FEN_EXCEPTION_AUTO_REFUND,
    simulator: { port: raw.FEN_SIMULATOR_PORT ?? (raw.PORT === 0 ? 0 : raw.PORT + 1), timeScale: raw.FEN_SIMULATOR_TIME_SCALE },
  };
}
