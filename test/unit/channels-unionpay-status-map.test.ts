import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { channelStatuses } from '../../src/channels/connector.js';
import {
  answerClassMap,
  answerClassOf,
  transactionStatusMap,
  transactionStatusOf,
  unionpayRespCodes,
} from '../../src/channels/unionpay/index.js';
import { answerClasses } from '../../src/channels/unionpay/status-map.js';

/**
 * Both of UnionPay's code maps are exhaustive over one list of codes, and say
 * what the ACP specification says: 00 success; 03, 04 and 05 "ask again"; 34
 * "no such transaction"; everything else a refusal (for a request) or a
 * failure (for a transaction) — with the few exceptions each documented in
 * the map.
 */

describe('the respCode of a synchronous answer', () => {
  it('gives every listed code exactly one class, and nothing else a class', () => {
    expect(Object.keys(answerClassMap).sort()).toEqual([...unionpayRespCodes].sort());
    for (const answerClass of Object.values(answerClassMap)) expect(answerClasses).toContain(answerClass);
  });

  it('is success for 00, retry for 03/04/05, not_found for 34, duplicate for 12, rejected otherwise', () => {
    const exceptions: Record<string, string> = { '00': 'success', A6: 'success', '03': 'retry', '04': 'retry', '05': 'retry', '83': 'retry', '12': 'duplicate', '34': 'not_found' };
    for (const code of unionpayRespCodes) expect(answerClassOf(code), code).toBe(exceptions[code] ?? 'rejected');
  });
});

describe('the result code of a transaction (origRespCode, a notification’s respCode)', () => {
  it('maps every listed code onto one of Fen’s statuses, and nothing else', () => {
    expect(Object.keys(transactionStatusMap).sort()).toEqual([...unionpayRespCodes].sort());
    for (const status of Object.values(transactionStatusMap)) expect(channelStatuses).toContain(status);
  });

  it('is succeeded for 00, pending for 03/04/05, failed otherwise', () => {
    // A6 (success with defects) and 42 (debited after the time limit) moved money; 70 and 83 are still running.
    const exceptions: Record<string, string> = { '00': 'succeeded', A6: 'succeeded', '42': 'succeeded', '03': 'pending', '04': 'pending', '05': 'pending', '70': 'pending', '83': 'pending' };
    for (const code of unionpayRespCodes) expect(transactionStatusOf(code), code).toBe(exceptions[code] ?? 'failed');
  });
});

describe('codes UnionPay might add', () => {
  it('are undefined (so unknown), never a guess', () => {
    fc.assert(
      fc.property(fc.string(), (code) => {
        fc.pre(!(unionpayRespCodes as readonly string[]).includes(code));
        expect(answerClassOf(code)).toBeUndefined();
        expect(transactionStatusOf(code)).toBeUndefined();
      }),
    );
    for (const inherited of ['toString', '__proto__', 'constructor']) {
      expect(answerClassOf(inherited)).toBeUndefined();
      expect(transactionStatusOf(inherited)).toBeUndefined();
    }
    expect(answerClassOf(undefined)).toBeUndefined();
  });
});
