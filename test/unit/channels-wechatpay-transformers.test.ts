import { describe, expect, it } from 'vitest';
import { Formatter, Rsa } from 'wechatpay-axios-plugin';
import type { ClosePaymentRequest, CreatePaymentRequest, QueryPaymentRequest, QueryRefundRequest, RefundRequest } from '../../src/channels/index.js';
import { outcomeFromError } from '../../src/channels/wechatpay/connector.js';
import {
  closeCall,
  closeResultFromAnswer,
  createCall,
  createResultFromAnswer,
  notificationEventFromResource,
  paymentResultFromAnswer,
  queryCall,
  refundCall,
  refundQueryCall,
  refundResultFromAnswer,
  refundResultFromQuery,
  type WechatpayCall,
} from '../../src/channels/wechatpay/transformers.js';
import { money } from '../../src/platform/money.js';
import { answerOf, fixtureNames, loadFixture, sentBody, type ApiExchangeFixture, type WechatpayFixture } from '../fixtures/wechatpay/fixtures.js';

/**
 * The pure WeChat Pay transformers on exchanges recorded from the simulator
 * (test/fixtures/wechatpay, recorded by capture.ts): each request our
 * builders make matches what went over the wire, each answer maps to the
 * expected result, and each recorded 2xx answer carries a signature that the
 * SDK's own verifier accepts — so the fixtures are the simulator's real
 * output, not hand-made.
 */

const account = { mchId: '1900000109', appId: 'wxd678efh567hg6787', notifyUrl: 'unused' };

function api(fixture: WechatpayFixture): ApiExchangeFixture {
  if (fixture.kind !== 'api') throw new Error(`${fixture.name} is not an API exchange`);
  return fixture;
}

/** The call a create input makes, with the recorded notify_url (it carries the recording's port). */
function recordedCreateCall(exchange: ApiExchangeFixture): WechatpayCall {
  const prepared = createCall(exchange.input as unknown as CreatePaymentRequest, { ...account, notifyUrl: String(sentBody(exchange)?.notify_url) });
  if (!prepared.ok) throw new Error(prepared.refusal.message);
  return prepared.call;
}

function expectSentAsBuilt(exchange: ApiExchangeFixture, call: WechatpayCall): void {
  const query = call.query ? `?${new URLSearchParams(call.query)}` : '';
  expect(`${call.httpMethod} /${call.path}${query}`).toBe(`${exchange.request.httpMethod} ${exchange.request.url}`);
  expect(call.body).toEqual(sentBody(exchange));
}

/** What each fixture must turn into; every recorded fixture needs an entry. */
const expectations: Record<string, (fixture: WechatpayFixture) => void> = {
  'create-native': (fixture) => {
    const exchange = api(fixture);
    const call = recordedCreateCall(exchange);
    expectSentAsBuilt(exchange, call);
    expect(sentBody(exchange)).toMatchObject({ amount: { total: 1234, currency: 'CNY' }, time_expire: '2026-01-15T10:30:00+08:00', description: '测试订单 Fixture order' });
    expect(createResultFromAnswer(answerOf(exchange), call)).toMatchObject({ status: 'pending', action: { kind: 'qr_code', qrCode: expect.stringMatching(/\/wechatpay\/pay\/[0-9a-f]+$/) } });
  },
  'create-h5': (fixture) => {
    const exchange = api(fixture);
    const call = recordedCreateCall(exchange);
    expectSentAsBuilt(exchange, call);
    expect(sentBody(exchange)).toMatchObject({ scene_info: { payer_client_ip: '203.0.113.7', h5_info: { type: 'Wap' } } });
    const result = createResultFromAnswer(answerOf(exchange), call, { returnUrl: 'https://merchant.example/back?a=1' });
    expect(result).toMatchObject({ status: 'pending', action: { kind: 'redirect', url: expect.stringMatching(/\?prepay_id=wx\w+&redirect_url=https%3A%2F%2Fmerchant.example%2Fback%3Fa%3D1$/) } });
  },
  'create-jsapi': (fixture) => {
    const exchange = api(fixture);
    const call = recordedCreateCall(exchange);
    expectSentAsBuilt(exchange, call);
    expect(sentBody(exchange)).toMatchObject({ payer: { openid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o' } });
    const result = createResultFromAnswer(answerOf(exchange), call, { jsapiParameters: (prepayId) => ({ package: `prepay_id=${prepayId}` }) });
    expect(result).toMatchObject({ status: 'pending', action: { kind: 'client_parameters', parameters: { package: expect.stringMatching(/^prepay_id=wx/) } } });
    // Without a way to sign the client parameters there is no payer action to give.
    expect(createResultFromAnswer(answerOf(exchange), call)).toMatchObject({ status: 'unknown', reason: 'unparsable' });
  },
  'create-out-trade-no-used': (fixture) => {
    const exchange = api(fixture);
    expect(createResultFromAnswer(answerOf(exchange), recordedCreateCall(exchange))).toEqual({
      status: 'failed',
      reason: 'rejected',
      channelCode: 'OUT_TRADE_NO_USED',
      message: 'OUT_TRADE_NO_USED 商户订单号重复',
    });
  },
  'create-orderpaid': (fixture) => {
    const exchange = api(fixture);
    expect(createResultFromAnswer(answerOf(exchange), recordedCreateCall(exchange))).toMatchObject({ status: 'unknown', reason: 'state_conflict', channelCode: 'ORDERPAID' });
  },
  'query-notpay': (fixture) => {
    const exchange = api(fixture);
    const input = exchange.input as unknown as QueryPaymentRequest;
    expectSentAsBuilt(exchange, queryCall(input, account));
    expect(paymentResultFromAnswer(answerOf(exchange), input)).toMatchObject({ status: 'pending', facts: { channelStatus: 'NOTPAY', amount: money(1234n, 'CNY'), paidAt: undefined, channelTradeNo: undefined } });
  },
  'query-success': (fixture) => {
    const exchange = api(fixture);
    const input = exchange.input as unknown as QueryPaymentRequest;
    const result = paymentResultFromAnswer(answerOf(exchange), input);
    expect(result).toMatchObject({ status: 'succeeded', facts: { outTradeNo: 'pay_fixture_paid', amount: money(1234n, 'CNY'), channelStatus: 'SUCCESS', channelTradeNo: expect.stringMatching(/^4200\d{24}$/) } });
    if (result.status === 'succeeded') expect(result.facts.paidAt.toISOString()).toBe('2026-01-15T02:00:20.000Z');
    // The same answer against another order amount is an exception, never a success.
    expect(paymentResultFromAnswer(answerOf(exchange), { ...input, expected: money(1235n, 'CNY') })).toMatchObject({ status: 'amount_mismatch', reportedStatus: 'succeeded' });
  },
  'query-closed': (fixture) => {
    const exchange = api(fixture);
    expect(paymentResultFromAnswer(answerOf(exchange), exchange.input as unknown as QueryPaymentRequest)).toMatchObject({ status: 'failed', reason: 'closed', facts: { channelStatus: 'CLOSED' } });
  },
  'query-order-not-exist': (fixture) => {
    const exchange = api(fixture);
    expect(paymentResultFromAnswer(answerOf(exchange), exchange.input as unknown as QueryPaymentRequest)).toEqual({ status: 'not_found', channelCode: 'ORDER_NOT_EXIST' });
  },
  'query-sign-error': (fixture) => {
    const exchange = api(fixture);
    expect(exchange.response.status).toBe(401);
    expect(paymentResultFromAnswer(answerOf(exchange), exchange.input as unknown as QueryPaymentRequest)).toMatchObject({ status: 'unknown', reason: 'channel_error', channelCode: 'SIGN_ERROR' });
  },
  'query-system-error': (fixture) => {
    const exchange = api(fixture);
    expect(paymentResultFromAnswer(answerOf(exchange), exchange.input as unknown as QueryPaymentRequest)).toMatchObject({ status: 'unknown', reason: 'channel_error', channelCode: 'SYSTEM_ERROR' });
  },
  'query-http-502': (fixture) => {
    const exchange = api(fixture);
    expect(paymentResultFromAnswer(answerOf(exchange), exchange.input as unknown as QueryPaymentRequest)).toEqual({
      status: 'unknown',
      reason: 'http_status',
      channelCode: 'HTTP 502',
      message: 'WeChat Pay answered HTTP 502',
    });
  },
  'close-success': (fixture) => {
    const exchange = api(fixture);
    expectSentAsBuilt(exchange, closeCall(exchange.input as unknown as ClosePaymentRequest, account));
    expect(exchange.response.status).toBe(204);
    expect(closeResultFromAnswer(answerOf(exchange))).toEqual({ status: 'succeeded' });
  },
  'close-orderpaid': (fixture) => {
    expect(closeResultFromAnswer(answerOf(api(fixture)))).toMatchObject({ status: 'failed', reason: 'rejected', channelCode: 'ORDERPAID' });
  },
  'refund-processing': (fixture) => {
    const exchange = api(fixture);
    const input = exchange.input as unknown as RefundRequest;
    const prepared = refundCall(input, { notifyUrl: String(sentBody(exchange)?.notify_url) });
    if (!prepared.ok) throw new Error(prepared.refusal.message);
    expectSentAsBuilt(exchange, prepared.call);
    expect(sentBody(exchange)).toMatchObject({ out_refund_no: 'ref_fixture_1', amount: { refund: 200, total: 1234, currency: 'CNY' } });
    expect(refundResultFromAnswer(answerOf(exchange), input)).toMatchObject({ status: 'pending', facts: { outRefundNo: 'ref_fixture_1', amount: money(200n, 'CNY'), channelStatus: 'PROCESSING', totalRefunded: undefined } });
    // The answer names the order's total: another payment amount is an exception.
    expect(refundResultFromAnswer(answerOf(exchange), { ...input, paymentAmount: money(1000n, 'CNY') })).toMatchObject({ status: 'amount_mismatch', expected: money(1000n, 'CNY'), reported: money(1234n, 'CNY') });
  },
  'refund-exceeds': (fixture) => {
    const exchange = api(fixture);
    expect(refundResultFromAnswer(answerOf(exchange), exchange.input as unknown as RefundRequest)).toMatchObject({ status: 'failed', reason: 'rejected', channelCode: 'INVALID_REQUEST' });
  },
  'refund-query-processing': (fixture) => {
    const exchange = api(fixture);
    const input = exchange.input as unknown as QueryRefundRequest;
    expectSentAsBuilt(exchange, refundQueryCall(input));
    expect(refundResultFromQuery(answerOf(exchange), input)).toMatchObject({ status: 'pending', facts: { channelStatus: 'PROCESSING', refundedAt: undefined } });
  },
  'refund-query-success': (fixture) => {
    const exchange = api(fixture);
    const input = exchange.input as unknown as QueryRefundRequest;
    expect(refundResultFromQuery(answerOf(exchange), input)).toMatchObject({ status: 'succeeded', facts: { amount: money(200n, 'CNY'), channelStatus: 'SUCCESS', refundedAt: new Date('2026-01-15T02:00:20.000Z') } });
    expect(refundResultFromQuery(answerOf(exchange), { ...input, expected: money(100n, 'CNY') })).toMatchObject({ status: 'amount_mismatch' });
    // An answer about another refund is not believed.
    expect(refundResultFromQuery(answerOf(exchange), { ...input, outRefundNo: 'ref_other' })).toMatchObject({ status: 'unknown', reason: 'unverifiable' });
  },
  'refund-query-not-found': (fixture) => {
    const exchange = api(fixture);
    expect(refundResultFromQuery(answerOf(exchange), exchange.input as unknown as QueryRefundRequest)).toEqual({ status: 'not_found', channelCode: 'RESOURCE_NOT_EXISTS' });
  },
  // The notifications are checked (signature, decryption, events) in channels-wechatpay-notification.test.ts.
  'notify-transaction-success': (fixture) => expect(fixture.kind).toBe('notification'),
  'notify-refund-success': (fixture) => expect(fixture.kind).toBe('notification'),
  'notify-refund-abnormal': (fixture) => expect(fixture.kind).toBe('notification'),
};

describe('WeChat Pay transformers on exchanges recorded from the simulator', () => {
  const names = fixtureNames();

  it('has an expectation for every recorded fixture, and a fixture for every expectation', () => {
    expect(names).toEqual(Object.keys(expectations).sort());
  });

  for (const name of names) {
    it(`maps ${name}`, () => {
      expectations[name]!(loadFixture(name));
    });
  }

  it('recorded answers carry signatures the SDK’s verifier accepts, except the bare gateway error', () => {
    for (const name of names) {
      const fixture = loadFixture(name);
      if (fixture.kind !== 'api') continue;
      const headers = fixture.response.headers;
      if (name === 'query-http-502') {
        expect(headers['wechatpay-signature'], name).toBeUndefined();
        continue;
      }
      expect(headers['wechatpay-serial'], name).toBe(fixture.keys.platformPublicKeyId);
      const message = Formatter.response(headers['wechatpay-timestamp']!, headers['wechatpay-nonce']!, fixture.response.body);
      expect(Rsa.verify(message, headers['wechatpay-signature']!, Rsa.from(fixture.keys.platformPublicKeyPem, Rsa.KEY_TYPE_PUBLIC)), name).toBe(true);
      expect(Rsa.verify(`${message}x`, headers['wechatpay-signature']!, Rsa.from(fixture.keys.platformPublicKeyPem, Rsa.KEY_TYPE_PUBLIC)), name).toBe(false);
    }
  });
});

describe('WeChat Pay requests built without calling anyone', () => {
  const base: CreatePaymentRequest = {
    method: 'wechat_native',
    outTradeNo: 'pay_x',
    amount: money(100n, 'CNY'),
    subject: 'x',
    expiresAt: new Date('2026-01-15T02:00:00Z'),
  };

  it('refuses what WeChat Pay would refuse before a request is made', () => {
    expect(createCall({ ...base, amount: money(100n, 'USD') }, account)).toMatchObject({ ok: false, refusal: { channelCode: 'unsupported_currency' } });
    expect(createCall({ ...base, amount: money(0n, 'CNY') }, account)).toMatchObject({ ok: false, refusal: { channelCode: 'invalid_amount' } });
    expect(createCall({ ...base, method: 'wechat_h5' }, account)).toMatchObject({ ok: false, refusal: { channelCode: 'missing_payer_ip' } });
    expect(createCall({ ...base, method: 'wechat_jsapi' }, account)).toMatchObject({ ok: false, refusal: { channelCode: 'missing_payer_openid' } });
    expect(createCall({ ...base, method: 'alipay_qr' }, account)).toMatchObject({ ok: false, refusal: { channelCode: 'unsupported_method' } });
    const refund = { outTradeNo: 'pay_x', outRefundNo: 'ref_x', refundAmount: money(1n, 'CNY'), paymentAmount: money(2n ** 60n, 'CNY') };
    expect(refundCall(refund, account)).toMatchObject({ ok: false, refusal: { channelCode: 'invalid_amount' } });
  });

  it('cuts the description to 127 characters without splitting one, and URL-encodes numbers in paths', () => {
    const prepared = createCall({ ...base, subject: '支'.repeat(126) + '😀😀' }, account);
    expect(prepared.ok && Array.from(String(prepared.call.body?.description))).toHaveLength(127);
    expect(queryCall({ outTradeNo: 'a/b?c', expected: base.amount }, account).path).toBe('v3/pay/transactions/out-trade-no/a%2Fb%3Fc');
    expect(prepared.ok && prepared.call.body?.notify_url).toBe('unused');
    const own = createCall({ ...base, notifyUrl: 'https://fen.example/own' }, account);
    expect(own.ok && own.call.body?.notify_url).toBe('https://fen.example/own');
  });
});

describe('WeChat Pay answers nobody recorded', () => {
  const query: QueryPaymentRequest = { outTradeNo: 'pay_x', expected: money(100n, 'CNY') };
  const paid = { out_trade_no: 'pay_x', trade_state: 'SUCCESS', success_time: '2026-01-15T10:00:00+08:00', amount: { total: 100, currency: 'CNY' } };

  it('maps a trade state WeChat Pay might add one day to unknown, never to a success or failure', () => {
    expect(paymentResultFromAnswer({ httpStatus: 200, body: { ...paid, trade_state: 'SOMETHING_NEW' } }, query)).toMatchObject({ status: 'unknown', reason: 'unmapped_status', channelCode: 'SOMETHING_NEW' });
  });

  it('maps PAYERROR to declined and REVOKED to closed, and reads REFUND as a payment that succeeded', () => {
    expect(paymentResultFromAnswer({ httpStatus: 200, body: { ...paid, trade_state: 'PAYERROR' } }, query)).toMatchObject({ status: 'failed', reason: 'declined' });
    expect(paymentResultFromAnswer({ httpStatus: 200, body: { ...paid, trade_state: 'REVOKED' } }, query)).toMatchObject({ status: 'failed', reason: 'closed' });
    expect(paymentResultFromAnswer({ httpStatus: 200, body: { ...paid, trade_state: 'REFUND' } }, query)).toMatchObject({ status: 'succeeded' });
    // A success without its time is not believed.
    expect(paymentResultFromAnswer({ httpStatus: 200, body: { ...paid, success_time: undefined } }, query)).toMatchObject({ status: 'unknown', reason: 'unparsable' });
  });

  it('reads an absent currency as CNY and refuses an unreadable amount', () => {
    expect(paymentResultFromAnswer({ httpStatus: 200, body: { ...paid, amount: { total: 100 } } }, query)).toMatchObject({ status: 'succeeded', facts: { amount: money(100n, 'CNY') } });
    for (const amount of [{ total: 1.5 }, { total: -1 }, { total: '100' }, { total: 2 ** 60 }, { total: 100, currency: 'XYZ' }, undefined]) {
      expect(paymentResultFromAnswer({ httpStatus: 200, body: { ...paid, amount } }, query), JSON.stringify(amount)).toMatchObject({ status: 'unknown', reason: 'unparsable' });
    }
  });

  it('does not believe an answer about another order', () => {
    expect(paymentResultFromAnswer({ httpStatus: 200, body: { ...paid, out_trade_no: 'pay_y' } }, query)).toMatchObject({ status: 'unknown', reason: 'unverifiable' });
  });

  it('never lets a 5xx or an unlisted code decide anything', () => {
    expect(paymentResultFromAnswer({ httpStatus: 500, body: { code: 'ORDER_NOT_EXIST', message: '?' } }, query)).toMatchObject({ status: 'unknown', reason: 'channel_error' });
    expect(paymentResultFromAnswer({ httpStatus: 400, body: { code: 'SOMETHING_NEW', message: '?' } }, query)).toMatchObject({ status: 'unknown', reason: 'unmapped_status', channelCode: 'SOMETHING_NEW' });
    expect(paymentResultFromAnswer({ httpStatus: 429, body: { code: 'FREQUENCY_LIMITED', message: '频率超限' } }, query)).toMatchObject({ status: 'unknown', reason: 'channel_error' });
    expect(closeResultFromAnswer({ httpStatus: 404, body: '<html>Not Found</html>' })).toMatchObject({ status: 'unknown', reason: 'http_status', channelCode: 'HTTP 404' });
    const refund: RefundRequest = { outTradeNo: 'pay_x', outRefundNo: 'ref_x', refundAmount: money(1n, 'CNY'), paymentAmount: money(100n, 'CNY') };
    expect(refundResultFromAnswer({ httpStatus: 403, body: { code: 'NOT_ENOUGH', message: '余额不足' } }, refund)).toMatchObject({ status: 'failed', reason: 'rejected', channelCode: 'NOT_ENOUGH' });
    expect(refundResultFromAnswer({ httpStatus: 503, body: { code: 'NOT_ENOUGH', message: '?' } }, refund)).toMatchObject({ status: 'unknown' });
  });

  it('reads notification resources into payment and refund events, and refuses other events', () => {
    expect(notificationEventFromResource('TRANSACTION.SUCCESS', 'EV-1', paid)).toMatchObject({ ok: true, event: { kind: 'payment', notificationId: 'EV-1', reportedStatus: 'succeeded' } });
    const refund = { out_trade_no: 'pay_x', out_refund_no: 'ref_x', refund_status: 'CLOSED', amount: { total: 100, refund: 40 } };
    expect(notificationEventFromResource('REFUND.CLOSED', 'EV-2', refund)).toMatchObject({ ok: true, event: { kind: 'refund', reportedStatus: 'failed', facts: { amount: money(40n, 'CNY') } } });
    expect(notificationEventFromResource('MCHTRANSFER.BILL.FINISHED', 'EV-3', refund)).toMatchObject({ ok: false, reason: 'unsupported' });
    expect(notificationEventFromResource('REFUND.SUCCESS', 'EV-4', { out_trade_no: 'pay_x' })).toMatchObject({ ok: false, reason: 'malformed' });
    expect(notificationEventFromResource('TRANSACTION.SUCCESS', 'EV-5', [])).toMatchObject({ ok: false, reason: 'malformed' });
  });
});

describe('what a failed call means', () => {
  const axiosError = (fields: Record<string, unknown>) => ({ isAxiosError: true, ...fields });

  it('reads an error answer as an answer, and everything else as unknown', () => {
    expect(outcomeFromError(axiosError({ code: 'ERR_BAD_REQUEST', response: { status: 404, data: { code: 'ORDER_NOT_EXIST' } } }))).toEqual({
      ok: true,
      answer: { httpStatus: 404, body: { code: 'ORDER_NOT_EXIST' } },
    });
    expect(outcomeFromError(axiosError({ code: 'ECONNABORTED' }))).toMatchObject({ ok: false, unknown: { reason: 'timeout' } });
    expect(outcomeFromError(axiosError({ code: 'ETIMEDOUT' }))).toMatchObject({ ok: false, unknown: { reason: 'timeout' } });
    expect(outcomeFromError(axiosError({ code: 'ECONNREFUSED' }))).toMatchObject({ ok: false, unknown: { reason: 'network' } });
    expect(outcomeFromError(new TypeError('boom'))).toMatchObject({ ok: false, unknown: { reason: 'unparsable' } });
  });

  it('treats every answer-verification failure as unverifiable, even with a 2xx status and a body', () => {
    for (const code of ['EV3_RES_HEADERS_INCOMPLATE', 'EV3_RES_HEADER_TIMESTAMP_OFFSET', 'EV3_RES_HEADER_PLATFORM_SERIAL', 'EV3_RES_HEADER_SIGNATURE_DIGEST']) {
      const outcome = outcomeFromError(axiosError({ code, message: 'signature=secret', response: { status: 200, data: { trade_state: 'SUCCESS' } } }));
      expect(outcome, code).toMatchObject({ ok: false, unknown: { status: 'unknown', reason: 'unverifiable', channelCode: code } });
      expect(JSON.stringify(outcome)).not.toContain('secret');
    }
  });
});
