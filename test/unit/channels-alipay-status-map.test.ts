import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { AlipayRequestError } from 'alipay-sdk';
import {
  channelStatuses,
  checkNotificationAmount,
  paymentResultFrom,
  type ReportedPayment,
  type ReportedRefund,
} from '../../src/channels/index.js';
import { unknownFromSdkError } from '../../src/channels/alipay/connector.js';
import {
  alipayErrorClasses,
  alipayResponseCodes,
  alipaySubCodes,
  alipayTradeStatuses,
  answerClassOf,
  fundChangeMap,
  refundStatusMap,
  responseCodeMap,
  subCodeMap,
  tradeStatusMap,
  tradeStatusOf,
} from '../../src/channels/alipay/status-map.js';
import { formatBeijingTime, moneyFromYuan, parseBeijingTime, timeoutExpressFor, yuanFromMinor } from '../../src/channels/alipay/transformers.js';
import { money } from '../../src/platform/money.js';

/**
 * The exhaustive status maps, the yuan ↔ fen conversion at Alipay's edge, and
 * the shared result helpers.
 */

describe('Alipay status maps', () => {
  it('map every listed trade status, and nothing else', () => {
    expect(Object.keys(tradeStatusMap).sort()).toEqual([...alipayTradeStatuses].sort());
    expect(tradeStatusMap).toEqual({ WAIT_BUYER_PAY: 'pending', TRADE_SUCCESS: 'succeeded', TRADE_FINISHED: 'succeeded', TRADE_CLOSED: 'failed' });
    for (const map of [tradeStatusMap, refundStatusMap, fundChangeMap]) {
      for (const status of Object.values(map)) expect(channelStatuses).toContain(status);
    }
  });

  it('give every listed code and sub_code a class', () => {
    expect(Object.keys(responseCodeMap).sort()).toEqual([...alipayResponseCodes].sort());
    expect(Object.keys(subCodeMap).sort()).toEqual([...alipaySubCodes].sort());
    for (const errorClass of Object.values(subCodeMap)) expect(alipayErrorClasses).toContain(errorClass);
  });

  it('classify answers by code, with a listed sub_code taking precedence', () => {
    expect(answerClassOf('10000', undefined)).toBe('success');
    expect(answerClassOf('40004', 'ACQ.TRADE_NOT_EXIST')).toBe('not_found');
    expect(answerClassOf('40004', 'ACQ.SYSTEM_ERROR')).toBe('retry');
    expect(answerClassOf('40004', 'ACQ.TRADE_HAS_SUCCESS')).toBe('state_conflict');
    expect(answerClassOf('40002', 'isv.invalid-signature')).toBe('rejected');
    expect(answerClassOf('20000', 'isp.unknow-error')).toBe('retry');
    // A code Alipay might add, or a business failure with an unlisted sub_code, is unknown (undefined) — not a guess.
    expect(answerClassOf('40004', 'ACQ.SOMETHING_NEW')).toBeUndefined();
    expect(answerClassOf('99999', undefined)).toBeUndefined();
    expect(answerClassOf(undefined, undefined)).toBeUndefined();
    // An unlisted sub_code under a code that decides by itself keeps the code's class.
    expect(answerClassOf('40002', 'isv.something-new')).toBe('rejected');
    expect(answerClassOf('20000', 'isp.something-new')).toBe('retry');
  });

  it('never maps an unlisted status word to anything but undefined', () => {
    fc.assert(
      fc.property(fc.string(), (word) => {
        fc.pre(!Object.hasOwn(tradeStatusMap, word));
        expect(tradeStatusOf(word)).toBeUndefined();
      }),
    );
    // Inherited property names are not statuses either.
    expect(tradeStatusOf('toString')).toBeUndefined();
    expect(tradeStatusOf('__proto__')).toBeUndefined();
  });
});

describe('yuan ↔ fen at Alipay’s edge', () => {
  it('round-trips every amount in fen exactly', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 10n ** 15n }), (fen) => {
        const yuan = yuanFromMinor(fen);
        expect(yuan).toMatch(/^\d+\.\d{2}$/);
        expect(moneyFromYuan(yuan)).toEqual(money(fen, 'CNY'));
      }),
    );
  });

  it('reads every plain yuan string as the same amount it writes back', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[1-9]\d{0,9}\.\d{2}$/), (yuan) => {
        const parsed = moneyFromYuan(yuan);
        expect(parsed).toBeDefined();
        expect(yuanFromMinor(parsed!.amount)).toBe(yuan);
      }),
    );
    expect(moneyFromYuan('0.10')).toEqual(money(10n, 'CNY'));
    expect(moneyFromYuan('12')).toEqual(money(1200n, 'CNY'));
    expect(moneyFromYuan('12.3')).toEqual(money(1230n, 'CNY'));
  });

  it('refuses anything that is not a plain, non-negative yuan amount', () => {
    for (const text of ['1.001', '-1.00', '+1.00', '1,000.00', '1e3', '0x10', '', ' 1.00', '1.00 ', '.5', '1.', 'NaN', '１.00']) {
      expect(moneyFromYuan(text), JSON.stringify(text)).toBeUndefined();
    }
    for (const value of [12.34, 1234n, null, undefined, { amount: '1.00' }]) expect(moneyFromYuan(value)).toBeUndefined();
  });

  it('reads Alipay’s Beijing-time timestamps and writes them back', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 4_102_444_800 }), (seconds) => {
        const date = new Date(seconds * 1000);
        expect(parseBeijingTime(formatBeijingTime(date))).toEqual(date);
      }),
    );
    expect(parseBeijingTime('2019-08-15 15:56:24')?.toISOString()).toBe('2019-08-15T07:56:24.000Z');
    expect(parseBeijingTime('2015-04-28 15:45:57.320')?.toISOString()).toBe('2015-04-28T07:45:57.320Z');
    for (const text of ['2019-02-30 00:00:00', '2019-13-01 00:00:00', '2019-08-15T15:56:24', '2019-08-15 15:56', '', 'yesterday']) {
      expect(parseBeijingTime(text), text).toBeUndefined();
    }
  });

  it('asks Alipay for whole minutes of validity, within what it accepts', () => {
    const now = new Date('2026-01-15T02:00:00.000Z');
    expect(timeoutExpressFor(new Date('2026-01-15T02:30:00.000Z'), now)).toBe('30m');
    expect(timeoutExpressFor(new Date('2026-01-15T02:30:00.001Z'), now)).toBe('31m');
    expect(timeoutExpressFor(new Date('2026-01-15T01:00:00.000Z'), now)).toBe('1m');
    expect(timeoutExpressFor(new Date('2027-01-15T02:00:00.000Z'), now)).toBe(`${15 * 24 * 60}m`);
  });
});

describe('shared result helpers', () => {
  const facts: ReportedPayment = {
    outTradeNo: 'pay_x',
    channelTradeNo: 't1',
    amount: money(100n, 'CNY'),
    channelStatus: 'TRADE_SUCCESS',
    paidAt: new Date('2026-01-15T02:00:00.000Z'),
    payerChannelId: undefined,
  };

  it('lets an amount or currency mismatch win over every status', () => {
    fc.assert(
      fc.property(fc.constantFrom(...channelStatuses), fc.bigInt({ min: 1n, max: 10n ** 12n }), (status, expectedAmount) => {
        fc.pre(expectedAmount !== 100n);
        expect(paymentResultFrom({ status, facts }, money(expectedAmount, 'CNY')).status).toBe('amount_mismatch');
      }),
    );
    expect(paymentResultFrom({ status: 'succeeded', facts }, money(100n, 'USD')).status).toBe('amount_mismatch');
    expect(paymentResultFrom({ status: 'succeeded', facts }, money(100n, 'CNY')).status).toBe('succeeded');
  });

  it('does not believe a success without a payment time, nor a refund success without its amount', () => {
    expect(paymentResultFrom({ status: 'succeeded', facts: { ...facts, paidAt: undefined } }, money(100n, 'CNY'))).toMatchObject({ status: 'unknown', reason: 'unparsable' });
    const refund: ReportedRefund = {
      outTradeNo: 'pay_x',
      outRefundNo: 'ref_x',
      channelTradeNo: 't1',
      channelRefundNo: undefined,
      amount: undefined,
      totalRefunded: money(50n, 'CNY'),
      channelStatus: 'TRADE_SUCCESS',
      refundedAt: undefined,
    };
    const event = { kind: 'refund' as const, notificationId: 'n1', reportedStatus: 'succeeded' as const, facts: refund };
    expect(checkNotificationAmount(event, money(50n, 'CNY'))).toMatchObject({ status: 'pending' });
  });

  it('turns every SDK failure into unknown, by kind', () => {
    const timeoutCause = Object.assign(new Error('timeout'), { name: 'HttpClientRequestTimeoutError' });
    const refusedCause = Object.assign(new Error('connect ECONNREFUSED'), { name: 'Error' });
    expect(unknownFromSdkError(new AlipayRequestError('HttpClient Request error: timeout', { cause: timeoutCause }))).toMatchObject({ status: 'unknown', reason: 'timeout' });
    expect(unknownFromSdkError(new AlipayRequestError('HttpClient Request error', { cause: refusedCause }))).toMatchObject({ status: 'unknown', reason: 'network' });
    expect(unknownFromSdkError(new AlipayRequestError('HTTP 请求错误, status: 502', { responseDataRaw: '<html>' }))).toMatchObject({ reason: 'http_status', channelCode: 'HTTP 502' });
    expect(unknownFromSdkError(new AlipayRequestError("验签失败，服务端返回的 sign: 'x' 无效", { responseDataRaw: '{}' }))).toMatchObject({ reason: 'unverifiable' });
    expect(unknownFromSdkError(new AlipayRequestError('Response 格式错误', { responseDataRaw: 'nope' }))).toMatchObject({ reason: 'unparsable' });
    expect(unknownFromSdkError(new TypeError('The "signature" argument must be of type string'))).toMatchObject({ reason: 'unverifiable' });
    // Nothing of the SDK's message (which may quote the signature) reaches the answer.
    expect(unknownFromSdkError(new AlipayRequestError("验签失败，服务端返回的 sign: 'SECRETSIGN' 无效", {})).message).not.toContain('SECRETSIGN');
  });
});
