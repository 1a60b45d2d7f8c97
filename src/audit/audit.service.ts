import { createHash } from 'node:crypto';
import type { Actor } from '../platform/actor.js';
import { assert } from '../platform/assert.js';
import { canonicalJson, normalise } from '../platform/canonical-json.js';
import type { Clock } from '../platform/clock.js';
import type { Db, DbTransaction } from '../platform/db/index.js';
import { newId } from '../platform/ids.js';

/**
 * The audit log: every change by an operator, merchant user or app, appended in
 * the transaction that makes the change. Records are hash-chained: each hash
 * covers the record and the hash before it, so an altered, removed or reordered
 * record breaks the chain and `fen audit verify` names the first one.
 */
export interface AuditInput {
  actor: Actor;
  action: string;
  targetType: string;
  targetId: string | null;
  merchantId?: string | null;
  before?: unknown;
  after?: unknown;
}

interface HashedFields {
  sequence: bigint;
  id: string;
  occurred_at: Date;
  actor_type: Actor['type'];
  actor_id: string | null;
  actor_roles: string[];
  ip: string | null;
  action: string;
  target_type: string;
  target_id: string | null;
  merchant_id: string | null;
  before: unknown;
  after: unknown;
  previous_hash: string;
}

export const genesisHash = '0'.repeat(64);

export function auditRecordHash(fields: HashedFields): string {
  // Only the hashed fields, named one by one: a database row also carries its own hash.
  const material = canonicalJson({
    id: fields.id,
    actor_type: fields.actor_type,
    actor_id: fields.actor_id,
    actor_roles: fields.actor_roles,
    ip: fields.ip,
    action: fields.action,
    target_type: fields.target_type,
    target_id: fields.target_id,
    merchant_id: fields.merchant_id,
    previous_hash: fields.previous_hash,
    sequence: fields.sequence.toString(),
    occurred_at: fields.occurred_at.toISOString(),
    before: fields.before ?? null,
    after: fields.after ?? null,
  });
  return createHash('sha256').update(material).digest('hex');
}

/** Appends one record. Must run inside the transaction of the change it records. */
export async function appendAudit(trx: DbTransaction, clock: Clock, input: AuditInput): Promise<string> {
  assert(trx.isTransaction, 'audit records are written in the transaction of the change');
  const head = await trx.selectFrom('audit_head').select(['sequence', 'hash']).where('singleton', '=', true).forUpdate().executeTakeFirstOrThrow();
  const fields: HashedFields = {
    sequence: head.sequence + 1n,
    id: newId('audit'),
    occurred_at: clock.now(),
    actor_type: input.actor.type,
    actor_id: input.actor.id,
    actor_roles: input.actor.roles,
    ip: input.actor.ip,
    action: input.action,
    target_type: input.targetType,
    target_id: input.targetId,
    merchant_id: input.merchantId ?? input.actor.merchantId ?? null,
    before: input.before === undefined ? null : normalise(input.before),
    after: input.after === undefined ? null : normalise(input.after),
    previous_hash: head.hash,
  };
  const hash = auditRecordHash(fields);
  await trx
    .insertInto('audit_log')
    .values({
      ...fields,
      before: fields.before === null ? null : JSON.stringify(fields.before),
      after: fields.after === null ? null : JSON.stringify(fields.after),
      hash,
    })
    .execute();
  await trx.updateTable('audit_head').set({ sequence: fields.sequence, hash }).where('singleton', '=', true).execute();
  return fields.id;
}

export type AuditProblem = 'altered' | 'missing' | 'reordered' | 'head_mismatch';

export type AuditVerification =
  | { ok: true; records: number }
  | { ok: false; records: number; sequence: bigint; problem: AuditProblem; message: string };

const verifyBatchSize = 1000;

/** Walks the whole chain in order and reports the first record that does not fit. */
export async function verifyAuditChain(db: Db): Promise<AuditVerification> {
  let expectedSequence = 1n;
  let previousHash = genesisHash;
  let records = 0;
  for (;;) {
    const rows = await db.selectFrom('audit_log').selectAll().where('sequence', '>=', expectedSequence).orderBy('sequence').limit(verifyBatchSize).execute();
    for (const row of rows) {
      const problem = checkRecord(row, expectedSequence, previousHash);
      if (problem) return { ok: false, records, ...problem };
      records += 1;
      expectedSequence += 1n;
      previousHash = row.hash;
    }
    if (rows.length < verifyBatchSize) break;
  }
  const head = await db.selectFrom('audit_head').select(['sequence', 'hash']).executeTakeFirstOrThrow();
  if (head.sequence !== expectedSequence - 1n || head.hash !== previousHash) {
    return {
      ok: false,
      records,
      sequence: expectedSequence,
      problem: 'head_mismatch',
      message: `the log ends at record ${expectedSequence - 1n} but the head says ${head.sequence}: records at the end were removed`,
    };
  }
  return { ok: true, records };
}

function checkRecord(
  row: HashedFields & { hash: string },
  expectedSequence: bigint,
  previousHash: string,
): { sequence: bigint; problem: AuditProblem; message: string } | undefined {
  if (row.sequence !== expectedSequence) {
    return { sequence: expectedSequence, problem: 'missing', message: `record ${expectedSequence} is missing (next found: ${row.sequence})` };
  }
  const recomputed = auditRecordHash(row);
  if (recomputed !== row.hash) {
    return { sequence: row.sequence, problem: 'altered', message: `record ${row.sequence} (${row.id}) was altered: its content no longer matches its hash` };
  }
  if (row.previous_hash !== previousHash) {
    return { sequence: row.sequence, problem: 'reordered', message: `record ${row.sequence} (${row.id}) does not follow the record before it: records were reordered or replaced` };
  }
  return undefined;
}

export interface AuditQuery {
  targetType?: string | undefined;
  targetId?: string | undefined;
  merchantId?: string | undefined;
  beforeSequence?: bigint | undefined;
  limit: number;
}

export async function listAudit(db: Db, query: AuditQuery) {
  let statement = db.selectFrom('audit_log').selectAll().orderBy('sequence', 'desc').limit(query.limit + 1);
  if (query.targetType) statement = statement.where('target_type', '=', query.targetType);
  if (query.targetId) statement = statement.where('target_id', '=', query.targetId);
  if (query.merchantId) statement = statement.where('merchant_id', '=', query.merchantId);
  if (query.beforeSequence !== undefined) statement = statement.where('sequence', '<', query.beforeSequence);
  const rows = await statement.execute();
  return { rows: rows.slice(0, query.limit), hasMore: rows.length > query.limit };
}
