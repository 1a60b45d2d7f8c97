import { describe, expect, it } from 'vitest';
import { AlipaySdk } from 'alipay-sdk';
import type {
  ClosePaymentRequest,
  CreatePaymentRequest,
  QueryPaymentRequest,
  QueryRefundRequest,
  RefundRequest,
} from '../../src/channels/index.js';
import {
  closeCall,
  closeResultFromAnswer,
  createResultFromPrecreate,
  notificationEventFromForm,
  paymentResultFromQuery,
  precreateCall,
  queryCall,
  refundCall,
  refundQueryCall,
  refundResultFromAnswer,
  refundResultFromQuery,
  responseKeyOf,
} from '../../src/channels/alipay/transformers.js';
import { money } from '../../src/platform/money.js';
import { answerOf, fixtureNames, loadFixture, type AlipayFixture, type GatewayExchangeFixture, type NotificationFixture } from '../fixtures/alipay/fixtures.js';
import { newAppKeys } from '../fixtures/alipay/harness.js';

/**
 * The pure Alipay transformers on exchanges recorded from the simulator
 * (test/fixtures/alipay, recorded by capture.ts): each request our builders
 * make matches what went over the wire, each answer maps to the expected
 * result, and each recorded answer carries a signature the official SDK
 * accepts — so the fixtures are the simulator's real output, not hand-made.
 */

const capturedAt = new Date('2026-01-15T02:00:00.000Z');
const sentBizContent = (fixture: GatewayExchangeFixture) => JSON.parse(fixture.request.form.biz_content ?? '{}') as Record<string, unknown>;

/** What each fixture must turn into; every recorded fixture needs an entry. */
const expectations: Record<string, (fixture: AlipayFixture) => void> = {
  'precreate-success': (fixture) => {
    const exchange = fixture as GatewayExchangeFixture;
    const input = exchange.input as unknown as CreatePaymentRequest;
    expect(precreateCall(input, { notifyUrl: 'unused' }, capturedAt).bizContent).toEqual(sentBizContent(exchange));
    expect(sentBizContent(exchange)).toMatchObject({ total_amount: '12.34', product_code: 'FACE_TO_FACE_PAYMENT', timeout_express: '30m' });
    expect(createResultFromPrecreate(answerOf(exchange), input)).toMatchObject({ status: 'pending', action: { kind: 'qr_code', qrCode: expect.stringMatching(/\/alipay\/qr\/[0-9a-f]+$/) } });
  },
  'precreate-context-inconsistent': (fixture) => {
    const exchange = fixture as GatewayExchangeFixture;
    expect(createResultFromPrecreate(answerOf(exchange), exchange.input as unknown as CreatePaymentRequest)).toMatchObject({
      status: 'failed',
      reason: 'rejected',
      channelCode: 'ACQ.CONTEXT_INCONSISTENT',
    });
  },
  'query-trade-not-exist': (fixture) => {
    const exchange = fixture as GatewayExchangeFixture;
    const input = exchange.input as unknown as QueryPaymentRequest;
    expect(queryCall(input).bizContent).toEqual(sentBizContent(exchange));
    expect(paymentResultFromQuery(answerOf(exchange), input)).toEqual({ status: 'not_found', channelCode: 'ACQ.TRADE_NOT_EXIST' });
  },
  'query-wait-buyer-pay': (fixture) => {
    const exchange = fixture as GatewayExchangeFixture;
    expect(paymentResultFromQuery(answerOf(exchange), exchange.input as unknown as QueryPaymentRequest)).toMatchObject({
      status: 'pending',
      facts: { channelStatus: 'WAIT_BUYER_PAY', amount: money(1234n, 'CNY'), paidAt: undefined },
    });
  },
  'query-trade-success': (fixture) => {
    const exchange = fixture as GatewayExchangeFixture;
    const input = exchange.input as unknown as QueryPaymentRequest;
    const result = paymentResultFromQuery(answerOf(exchange), input);
    expect(result).toMatchObject({ status: 'succeeded', facts: { outTradeNo: 'pay_fixture_paid', amount: money(1234n, 'CNY'), channelStatus: 'TRADE_SUCCESS' } });
    if (result.status === 'succeeded') expect(result.facts.paidAt.toISOString()).toBe('2026-01-15T02:00:20.000Z');
    // The same answer against another order amount is an exception, never a success.
    expect(paymentResultFromQuery(answerOf(exchange), { ...input, expected: money(1235n, 'CNY') })).toMatchObject({ status: 'amount_mismatch', reportedStatus: 'succeeded' });
  },
  'query-trade-closed': (fixture) => {
    const exchange = fixture as GatewayExchangeFixture;
    expect(paymentResultFromQuery(answerOf(exchange), exchange.input as unknown as QueryPaymentRequest)).toMatchObject({ status: 'failed', reason: 'closed' });
  },
  'query-invalid-signature': (fixture) => {
    const exchange = fixture as GatewayExchangeFixture;
    expect(paymentResultFromQuery(answerOf(exchange), exchange.input as unknown as QueryPaymentRequest)).toMatchObject({
      status: 'unknown',
      reason: 'channel_error',
      channelCode: 'isv.invalid-signature',
    });
  },
  'query-service-unavailable': (fixture) => {
    const exchange = fixture as GatewayExchangeFixture;
    expect(paymentResultFromQuery(answerOf(exchange), exchange.input as unknown as QueryPaymentRequest)).toMatchObject({ status: 'unknown', channelCode: 'isp.unknow-error' });
  },
  'close-success': (fixture) => {
    const exchange = fixture as GatewayExchangeFixture;
    const input = exchange.input as unknown as ClosePaymentRequest;
    expect(closeCall(input).bizContent).toEqual(sentBizContent(exchange));
    expect(closeResultFromAnswer(answerOf(exchange), input)).toEqual({ status: 'succeeded' });
  },
  'close-status-error': (fixture) => {
    const exchange = fixture as GatewayExchangeFixture;
    expect(closeResultFromAnswer(answerOf(exchange), exchange.input as unknown as ClosePaymentRequest)).toMatchObject({ status: 'failed', channelCode: 'ACQ.TRADE_STATUS_ERROR' });
  },
  'refund-partial': (fixture) => {
    const exchange = fixture as GatewayExchangeFixture;
    const input = exchange.input as unknown as RefundRequest;
    expect(refundCall(input).bizContent).toEqual(sentBizContent(exchange));
    expect(sentBizContent(exchange)).toMatchObject({ refund_amount: '2.00', out_request_no: 'ref_fixture_1' });
    expect(refundResultFromAnswer(answerOf(exchange), input)).toMatchObject({
      status: 'succeeded',
      facts: { outRefundNo: 'ref_fixture_1', amount: money(200n, 'CNY'), totalRefunded: money(200n, 'CNY'), channelStatus: 'Y' },
    });
  },
  'refund-repeat': (fixture) => {
    const exchange = fixture as GatewayExchangeFixture;
    expect(refundResultFromAnswer(answerOf(exchange), exchange.input as unknown as RefundRequest)).toMatchObject({ status: 'pending', facts: { channelStatus: 'N' } });
  },
  'refund-exceeds-total': (fixture) => {
    const exchange = fixture as GatewayExchangeFixture;
    expect(refundResultFromAnswer(answerOf(exchange), exchange.input as unknown as RefundRequest)).toMatchObject({
      status: 'failed',
      reason: 'rejected',
      channelCode: 'ACQ.REFUND_AMT_NOT_EQUAL_TOTAL',
    });
  },
  'refund-system-error': (fixture) => {
    const exchange = fixture as GatewayExchangeFixture;
    expect(refundResultFromAnswer(answerOf(exchange), exchange.input as unknown as RefundRequest)).toMatchObject({ status: 'unknown', channelCode: 'ACQ.SYSTEM_ERROR' });
  },
  'refund-query-success': (fixture) => {
    const exchange = fixture as GatewayExchangeFixture;
    const input = exchange.input as unknown as QueryRefundRequest;
    expect(refundQueryCall(input).bizContent).toEqual(sentBizContent(exchange));
    expect(refundResultFromQuery(answerOf(exchange), input)).toMatchObject({ status: 'succeeded', facts: { amount: money(200n, 'CNY'), channelStatus: 'REFUND_SUCCESS' } });
    expect(refundResultFromQuery(answerOf(exchange), { ...input, expected: money(100n, 'CNY') })).toMatchObject({ status: 'amount_mismatch' });
  },
  'refund-query-not-found': (fixture) => {
    const exchange = fixture as GatewayExchangeFixture;
    expect(refundResultFromQuery(answerOf(exchange), exchange.input as unknown as QueryRefundRequest)).toMatchObject({ status: 'not_found' });
  },
  'notify-trade-success': (fixture) => {
    const parsed = notificationEventFromForm((fixture as NotificationFixture).form);
    expect(parsed).toMatchObject({ ok: true, event: { kind: 'payment', reportedStatus: 'succeeded', facts: { amount: money(1234n, 'CNY'), channelStatus: 'TRADE_SUCCESS' } } });
  },
  'notify-trade-closed': (fixture) => {
    const parsed = notificationEventFromForm((fixture as NotificationFixture).form);
    expect(parsed).toMatchObject({ ok: true, event: { kind: 'payment', reportedStatus: 'failed', failureReason: 'closed', facts: { channelStatus: 'TRADE_CLOSED', paidAt: undefined } } });
  },
};

function sdkFor(fixture: AlipayFixture): AlipaySdk {
  return new AlipaySdk({ appId: '2021000000000001', privateKey: appKeys.privateKeyPem, alipayPublicKey: fixture.simulatorPublicKeyPem });
}

const appKeys = newAppKeys();

describe('Alipay transformers on answers recorded from the simulator', () => {
  const names = fixtureNames();

  it('has an expectation for every recorded fixture, and a fixture for every expectation', () => {
    expect(names).toEqual(Object.keys(expectations).sort());
  });

  for (const name of names) {
    it(`maps ${name}`, () => {
      const fixture = loadFixture(name);
      expectations[name]!(fixture);
    });
  }

  it('recorded answers carry signatures the official SDK accepts', () => {
    for (const name of names) {
      const fixture = loadFixture(name);
      if (fixture.kind === 'notification') {
        expect(sdkFor(fixture).checkNotifySignV2(fixture.form), name).toBe(true);
        continue;
      }
      const sign = (JSON.parse(fixture.responseText) as { sign: string }).sign;
      expect(() => sdkFor(fixture).checkResponseSign(fixture.responseText, responseKeyOf(fixture.apiMethod), sign, ''), name).not.toThrow();
    }
  });
});

describe('Alipay transformers on answers nobody recorded', () => {
  const query: QueryPaymentRequest = { outTradeNo: 'pay_x', expected: money(100n, 'CNY') };

  it('maps a trade status Alipay might add one day to unknown, never to a success or failure', () => {
    const answer = { code: '10000', msg: 'Success', out_trade_no: 'pay_x', trade_status: 'TRADE_SOMETHING_NEW', total_amount: '1.00' };
    expect(paymentResultFromQuery(answer, query)).toMatchObject({ status: 'unknown', reason: 'unmapped_status', channelCode: 'TRADE_SOMETHING_NEW' });
  });

  it('maps an unlisted business error to unknown and an answer about another trade to unknown', () => {
    expect(paymentResultFromQuery({ code: '40004', msg: 'Business Failed', sub_code: 'ACQ.SOMETHING_NEW' }, query)).toMatchObject({ status: 'unknown', reason: 'unmapped_status' });
    const other = { code: '10000', msg: 'Success', out_trade_no: 'pay_y', trade_status: 'TRADE_SUCCESS', total_amount: '1.00', send_pay_date: '2026-01-15 10:00:00' };
    expect(paymentResultFromQuery(other, query)).toMatchObject({ status: 'unknown', reason: 'unverifiable' });
  });

  it('maps an answer with an unreadable amount to unknown', () => {
    for (const total of ['1.001', '-1.00', '1,000.00', '1e2', '', undefined, 100]) {
      const answer = { code: '10000', msg: 'Success', out_trade_no: 'pay_x', trade_status: 'TRADE_SUCCESS', total_amount: total };
      expect(paymentResultFromQuery(answer, query), String(total)).toMatchObject({ status: 'unknown', reason: 'unparsable' });
    }
  });

  it('reads a TRADE_CLOSED that carries a payment time as refunded in full', () => {
    const answer = { code: '10000', msg: 'Success', out_trade_no: 'pay_x', trade_status: 'TRADE_CLOSED', total_amount: '1.00', send_pay_date: '2026-01-15 10:00:00' };
    expect(paymentResultFromQuery(answer, query)).toMatchObject({ status: 'failed', reason: 'refunded_in_full' });
  });

  it('reads Alipay’s refund notification as a refund event that a refund query must confirm', () => {
    const form = {
      notify_type: 'trade_status_sync',
      out_trade_no: 'pay_x',
      trade_no: '2026011522001234567890123456',
      trade_status: 'TRADE_SUCCESS',
      total_amount: '1.00',
      out_biz_no: 'ref_x',
      refund_fee: '0.40',
      gmt_refund: '2026-01-15 10:05:00.123',
    };
    expect(notificationEventFromForm(form)).toMatchObject({
      ok: true,
      event: { kind: 'refund', reportedStatus: 'pending', facts: { outRefundNo: 'ref_x', amount: undefined, totalRefunded: money(40n, 'CNY') } },
    });
  });

  it('refuses notifications of another type or without the trade’s fields', () => {
    expect(notificationEventFromForm({ notify_type: 'batch_trans_notify' })).toMatchObject({ ok: false, reason: 'unsupported' });
    expect(notificationEventFromForm({ notify_type: 'trade_status_sync', out_trade_no: 'x' })).toMatchObject({ ok: false, reason: 'malformed' });
  });

  it('checks a refund answer without send_back_fee against the running total', () => {
    const request: RefundRequest = { outTradeNo: 'pay_x', outRefundNo: 'ref_x', refundAmount: money(300n, 'CNY'), paymentAmount: money(1000n, 'CNY') };
    const answer = (refundFee: string) => ({ code: '10000', msg: 'Success', out_trade_no: 'pay_x', fund_change: 'Y', refund_fee: refundFee });
    expect(refundResultFromAnswer(answer('5.00'), request)).toMatchObject({ status: 'succeeded', facts: { amount: money(300n, 'CNY') } });
    expect(refundResultFromAnswer(answer('2.00'), request)).toMatchObject({ status: 'amount_mismatch' });
    expect(refundResultFromAnswer(answer('10.01'), request)).toMatchObject({ status: 'amount_mismatch' });
  });
});
