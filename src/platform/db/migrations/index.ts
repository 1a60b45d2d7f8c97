import type { Migration } from 'kysely';
import * as foundation from './0001_foundation.js';

/**
 * Migrations in order. Listed here rather than read from the folder, so they run
 * the same under tsx, vitest and any bundler. A migration is never edited after
 * it has landed: a change is a new one.
 */
export const migrations: Record<string, Migration> = {
  '0001_foundation': foundation,
};
