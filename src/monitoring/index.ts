import { normalise } from '../platform/canonical-json.js';
import type { Clock } from '../platform/clock.js';
import type { DbExecutor } from '../platform/db/index.js';
import { newId } from '../platform/ids.js';

/**
 * Alerts put what needs a person in front of one: a forged notification, an
 * amount that differs from the order, money that arrived for a closed order.
 * Raising one is a row in the same transaction as what caused it.
 */
export type AlertKind = 'forged_notification' | 'amount_mismatch' | 'paid_after_close' | 'duplicate_payment' | 'channel_unavailable';

export interface NewAlert {
  kind: AlertKind;
  severity: 'info' | 'warning' | 'critical';
  merchantId: string | null;
  subjectId: string | null;
  message: string;
  details?: unknown;
}

export async function raiseAlert(executor: DbExecutor, clock: Clock, alert: NewAlert): Promise<string> {
  const id = newId('alert');
  await executor
    .insertInto('alerts')
    .values({
      id,
      kind: alert.kind,
      severity: alert.severity,
      merchant_id: alert.merchantId,
      subject_id: alert.subjectId,
      message: alert.message,
      details: alert.details === undefined ? null : JSON.stringify(normalise(alert.details)),
      created_at: clock.now(),
    })
    .execute();
  return id;
}
