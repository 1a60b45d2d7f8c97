import type { Migration } from 'kysely';
import * as foundation from './0001_foundation.js';
import * as ledger from './0002_ledger.js';
import * as payments from './0003_payments.js';
import * as reconciliation from './0004_reconciliation.js';
import * as reconWork from './0005_recon_work.js';

/**
 * Migrations in order. Listed here rather than read from the folder, so they run
 * the same under tsx, vitest and any bundler. A migration is never edited after
 * it has landed: a change is a new one.
 */
export const migrations: Record<string, Migration> = {
  '0001_foundation': foundation,
  '0002_ledger': ledger,
  '0003_payments': payments,
  '0004_reconciliation': reconciliation,
  '0005_recon_work': reconWork,
};
