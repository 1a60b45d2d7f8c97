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

/**
 * Ids made at a given time (the injected clock's) come from a factory of
 * their own: sharing the machine-time factory, an id asked for at a time
 * behind the last machine-time id would carry that later time instead (a
 * monotonic factory never goes back), and UnionPay reads its txnTime back
 * from a payment's id. When the given time goes back, the factory starts
 * afresh, so the id carries the time it was asked for.
 */
let nextUlidAt = monotonicFactory();
let lastGivenTimeMs = 0;

function ulidAt(timeMs: number): string {
  if (timeMs < lastGivenTimeMs) nextUlidAt = monotonicFactory();
  lastGivenTimeMs = timeMs;
  return nextUlidAt(timeMs);
}

export function newId(kind: IdKind, timeMs?: number): string {
  const ulid = timeMs === undefined ? nextUlid() : ulidAt(timeMs);
  return `${idPrefixes[kind]}_${ulid.toLowerCase()}`;
}

const idPattern = /^[a-z]{3}_[0-9a-hjkmnp-tv-z]{26}$/;

export function isId(kind: IdKind, value: string): boolean {
  return idPattern.test(value) && value.startsWith(`${idPrefixes[kind]}_`);
}
