import type { Insertable, Selectable } from 'kysely';
import type { DbExecutor, MerchantStatus, MerchantsTable } from '../platform/db/index.js';
import { maskTail } from '../platform/secret-box.js';
import { minorToJsonNumber } from '../platform/money.js';
import type { MerchantView } from './merchants.schemas.js';

export type MerchantRow = Selectable<MerchantsTable>;

export async function insertMerchant(executor: DbExecutor, row: Insertable<MerchantsTable>): Promise<MerchantRow> {
  return executor.insertInto('merchants').values(row).returningAll().executeTakeFirstOrThrow();
}

export async function findMerchant(executor: DbExecutor, id: string): Promise<MerchantRow | undefined> {
  return executor.selectFrom('merchants').selectAll().where('id', '=', id).executeTakeFirst();
}

export interface StatusUpdate {
  id: string;
  expectedStatus: MerchantStatus;
  status: MerchantStatus;
  reason: string | null;
  now: Date;
  reviewedBy?: string | null;
}

/**
 * One conditional UPDATE: it changes the row only while it still has the status
 * the caller saw. Of two racing transitions the second finds no matching row
 * (PostgreSQL re-checks the WHERE after waiting for the first), so it loses.
 */
export async function updateMerchantStatus(executor: DbExecutor, update: StatusUpdate): Promise<MerchantRow | undefined> {
  const review = update.reviewedBy === undefined ? {} : { reviewed_by: update.reviewedBy, reviewed_at: update.now };
  return executor
    .updateTable('merchants')
    .set({ status: update.status, status_reason: update.reason, updated_at: update.now, ...review })
    .where('id', '=', update.id)
    .where('status', '=', update.expectedStatus)
    .returningAll()
    .executeTakeFirst();
}

export interface MerchantListQuery {
  status?: MerchantStatus | undefined;
  /** A prefix of the name (any case) or of the business licence number. */
  prefix?: string | undefined;
  /** Only merchants with an id below this one: the cursor of the previous page. */
  beforeId?: string | undefined;
  limit: number;
}

/** Escapes LIKE's wildcards so a search for `50%` finds exactly that. */
function likePrefix(text: string): string {
  return `${text.replace(/[\\%_]/g, (character) => `\\${character}`)}%`;
}

/** Newest first; ids are time-sortable, so ordering by id is ordering by creation. */
export async function listMerchants(executor: DbExecutor, query: MerchantListQuery): Promise<{ rows: MerchantRow[]; hasMore: boolean }> {
  let statement = executor.selectFrom('merchants').selectAll().orderBy('id', 'desc').limit(query.limit + 1);
  if (query.status) statement = statement.where('status', '=', query.status);
  if (query.beforeId) statement = statement.where('id', '<', query.beforeId);
  if (query.prefix) {
    const prefix = query.prefix;
    statement = statement.where((where) =>
      where.or([
        where(where.fn('lower', ['name']), 'like', likePrefix(prefix.toLowerCase())),
        where('business_licence_no', 'like', likePrefix(prefix.toUpperCase())),
      ]),
    );
  }
  const rows = await statement.execute();
  return { rows: rows.slice(0, query.limit), hasMore: rows.length > query.limit };
}

/** The public view of a merchant. The sealed account number never leaves this module; only its last four digits do. */
export function toMerchantView(row: MerchantRow): MerchantView {
  return {
    id: row.id,
    name: row.name,
    short_name: row.short_name,
    status: row.status,
    status_reason: row.status_reason,
    business_licence_no: row.business_licence_no,
    legal_representative: row.legal_representative,
    contact: { name: row.contact_name, phone: row.contact_phone, email: row.contact_email },
    settlement_account: {
      bank_name: row.settlement_bank_name,
      account_name: row.settlement_account_name,
      account_number: maskTail(row.settlement_account_number_last4),
    },
    fee_plan: {
      rate_basis_points: minorToJsonNumber(row.fee_rate_basis_points),
      minimum_minor: minorToJsonNumber(row.fee_minimum_minor),
      maximum_minor: row.fee_maximum_minor === null ? null : minorToJsonNumber(row.fee_maximum_minor),
    },
    settlement_cycle: row.settlement_cycle,
    risk_level: row.risk_level,
    reviewed_by: row.reviewed_by,
    reviewed_at: row.reviewed_at ? row.reviewed_at.toISOString() : null,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  };
}
