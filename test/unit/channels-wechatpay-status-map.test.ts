import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { channelStatuses } from '../../src/channels/index.js';
import {
  errorClassOf,
  errorCodeMap,
  eventKindOf,
  eventTypeMap,
  refundStatusMap,
  refundStatusOf,
  tradeFailureReasonMap,
  tradeStateMap,
  tradeStateOf,
  wechatpayErrorClasses,
  wechatpayErrorCodes,
  wechatpayEventTypes,
  wechatpayRefundStatuses,
  wechatpayTradeStates,
} from '../../src/channels/wechatpay/status-map.js';
import { fenFromJson, formatBeijingRfc3339, moneyFromAmount, parseRfc3339 } from '../../src/channels/wechatpay/transformers.js';
import { money } from '../../src/platform/money.js';

/**
 * The exhaustive status maps, and the amounts and times at WeChat Pay's edge
 * (fen on both sides, so only checks, no conversion).
 */

describe('WeChat Pay status maps', () => {
  it('map every listed trade state, and nothing else, as decided', () => {
    expect(Object.keys(tradeStateMap).sort()).toEqual([...wechatpayTradeStates].sort());
    expect(tradeStateMap).toEqual({
      SUCCESS: 'succeeded',
      REFUND: 'succeeded',
      NOTPAY: 'pending',
      USERPAYING: 'pending',
      CLOSED: 'failed',
      REVOKED: 'failed',
      PAYERROR: 'failed',
    });
    // Every failed state says why it failed.
    const failed = Object.entries(tradeStateMap).filter(([, status]) => status === 'failed').map(([state]) => state);
    expect(Object.keys(tradeFailureReasonMap).sort()).toEqual(failed.sort());
    expect(tradeFailureReasonMap).toEqual({ CLOSED: 'closed', REVOKED: 'closed', PAYERROR: 'declined' });
  });

  it('map every listed refund status as decided', () => {
    expect(Object.keys(refundStatusMap).sort()).toEqual([...wechatpayRefundStatuses].sort());
    expect(refundStatusMap).toEqual({ SUCCESS: 'succeeded', PROCESSING: 'pending', ABNORMAL: 'pending', CLOSED: 'failed' });
    for (const map of [tradeStateMap, refundStatusMap]) {
      for (const status of Object.values(map)) expect(channelStatuses).toContain(status);
    }
  });

  it('give every listed error code a class, with the codes the brief names where it says', () => {
    expect(Object.keys(errorCodeMap).sort()).toEqual([...wechatpayErrorCodes].sort());
    for (const errorClass of Object.values(errorCodeMap)) expect(wechatpayErrorClasses).toContain(errorClass);
    expect(errorClassOf('ORDER_NOT_EXIST')).toBe('not_found');
    expect(errorClassOf('RESOURCE_NOT_EXISTS')).toBe('not_found');
    expect(errorClassOf('SIGN_ERROR')).toBe('rejected');
    expect(errorClassOf('PARAM_ERROR')).toBe('rejected');
    expect(errorClassOf('NOT_ENOUGH')).toBe('rejected');
    expect(errorClassOf('ORDERPAID')).toBe('state_conflict');
    expect(errorClassOf('ORDER_CLOSED')).toBe('state_conflict');
    expect(errorClassOf('SYSTEM_ERROR')).toBe('retry');
  });

  it('know the four notification events Fen subscribes to', () => {
    expect(Object.keys(eventTypeMap).sort()).toEqual([...wechatpayEventTypes].sort());
    expect(eventKindOf('TRANSACTION.SUCCESS')).toBe('payment');
    expect(eventKindOf('REFUND.ABNORMAL')).toBe('refund');
    expect(eventKindOf('TRANSACTION.CLOSED')).toBeUndefined();
  });

  it('never map an unlisted word to anything but undefined', () => {
    fc.assert(
      fc.property(fc.string(), (word) => {
        fc.pre(!Object.hasOwn(tradeStateMap, word) && !Object.hasOwn(refundStatusMap, word) && !Object.hasOwn(errorCodeMap, word));
        expect(tradeStateOf(word)).toBeUndefined();
        expect(refundStatusOf(word)).toBeUndefined();
        expect(errorClassOf(word)).toBeUndefined();
      }),
    );
    // Inherited property names are not statuses either.
    for (const word of ['toString', '__proto__', 'constructor']) {
      expect(tradeStateOf(word)).toBeUndefined();
      expect(errorClassOf(word)).toBeUndefined();
    }
    expect(tradeStateOf(undefined)).toBeUndefined();
  });
});

describe('amounts and times at WeChat Pay’s edge', () => {
  it('takes every safe non-negative integer as fen, and nothing else', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), (fen) => {
        expect(fenFromJson(fen)).toBe(BigInt(fen));
      }),
    );
    for (const value of [-1, 1.5, Number.MAX_SAFE_INTEGER + 1, Number.NaN, '1', null, undefined, 1n]) expect(fenFromJson(value), String(value)).toBeUndefined();
    expect(moneyFromAmount({ refund: 40 }, 'refund')).toEqual(money(40n, 'CNY'));
    expect(moneyFromAmount({ total: 40, currency: 'HKD' }, 'total')).toEqual(money(40n, 'HKD'));
    expect(moneyFromAmount({ total: 40, currency: 1 }, 'total')).toBeUndefined();
  });

  it('round-trips every time through WeChat Pay’s Beijing RFC 3339, to the second', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 4_102_444_800 }), (seconds) => {
        const date = new Date(seconds * 1000);
        const text = formatBeijingRfc3339(date);
        expect(text).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+08:00$/);
        expect(parseRfc3339(text)).toEqual(date);
      }),
    );
    expect(formatBeijingRfc3339(new Date('2026-01-15T16:30:00Z'))).toBe('2026-01-16T00:30:00+08:00');
  });

  it('reads other offsets and fractions, and refuses impossible or zone-less times', () => {
    expect(parseRfc3339('2026-01-15T02:00:20Z')).toEqual(new Date('2026-01-15T02:00:20Z'));
    expect(parseRfc3339('2026-01-14T21:00:20.5-05:00')).toEqual(new Date('2026-01-15T02:00:20.500Z'));
    for (const text of ['2026-02-30T10:00:00+08:00', '2026-01-15T24:00:00+08:00', '2026-01-15 10:00:00', '2026-01-15T10:00:00', '', 20260115, undefined]) {
      expect(parseRfc3339(text), String(text)).toBeUndefined();
    }
  });
});
