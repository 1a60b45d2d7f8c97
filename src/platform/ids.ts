import { monotonicFactory } from 'ulid';

/**
 * Prefixed, time-sortable ids (a ULID after the prefix, lower-cased so ids read
 * the same everywhere). The monotonic factory keeps ids made in the same
 * millisecond in order.
 */
export const idPrefixes = {
  merchant: 'mch',
  app: 'app',
  appSecret: 'sec',
  channelAccount: 'cha',
  payment: 'pay',
  refund: 'ref',
  event: 'evt',
  ledgerAccount: 'acc',
  journalEntry: 'jnl',
  bill: 'bil',
  reconBatch: 'rcb',
  difference: 'dif',
  clearingItem: 'clr',
  settlement: 'stl',
  payout: 'pot',
  riskDecision: 'rsk',
  blocklistEntry: 'blk',
  alert: 'alr',
  user: 'usr',
  audit: 'aud',
  session: 'ses',
  request: 'req',
  exception: 'exc',
  delivery: 'dlv',
} as const;

export type IdKind = keyof typeof idPrefixes;

const nextUlid = monotonicFactory();

export function newId(kind: IdKind, timeMs?: number): string {
  return `${idPrefixes[kind]}_${nextUlid(timeMs).toLowerCase()}`;
}

const idPattern = /^[a-z]{3}_[0-9a-hjkmnp-tv-z]{26}$/;

export function isId(kind: IdKind, value: string): boolean {
  return idPattern.test(value) && value.startsWith(`${idPrefixes[kind]}_`);
}
