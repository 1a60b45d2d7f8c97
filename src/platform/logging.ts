import { pino, type Logger, type LoggerOptions } from 'pino';

/**
 * JSON logs that never carry a secret. Redaction is by key name, so a new field
 * called `secret`, `password` or `*_key` anywhere in a logged object is hidden
 * without anyone remembering to add it here.
 */
export const redactedPaths = [
  'password',
  'secret',
  'app_secret',
  'webhook_secret',
  'totp',
  'totp_secret',
  'private_key',
  'master_key',
  'account_number',
  'settlement_account_number',
  'authorization',
  'sign',
  'signature',
  '*.sign',
  '*.signature',
  'cookie',
  'headers.authorization',
  'headers.cookie',
  'headers["fen-signature"]',
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["fen-signature"]',
  'res.headers["set-cookie"]',
  '*.password',
  '*.secret',
  '*.app_secret',
  '*.webhook_secret',
  '*.totp',
  '*.totp_secret',
  '*.private_key',
  '*.account_number',
  '*.settlement_account_number',
];

export function loggerOptions(level: string): LoggerOptions {
  return {
    level,
    base: { service: 'fen' },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: redactedPaths, censor: '[redacted]' },
    formatters: { level: (label) => ({ level: label }) },
  };
}

export function createLogger(level: string): Logger {
  return pino(loggerOptions(level));
}

export type { Logger };
