import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { CreatePaymentRequest, QueryPaymentRequest, QueryRefundRequest, RefundRequest } from '../../src/channels/connector.js';
import {
  fenNumberFor,
  formatBeijingCompact,
  frontFormHtml,
  moneyFromTxnAmt,
  notificationEventFromForm,
  orderIdFor,
  parseAnswerText,
  parseBeijingCompact,
  parseTraceTime,
  riskRateInfoFor,
  trustFrom,
  txnTimeFor,
  verifyUnionpayMessage,
} from '../../src/channels/unionpay/index.js';
import {
  closeResultFromQuery,
  consumeCall,
  paymentResultFromQuery,
  queryCall,
  refundCall,
  refundResultFromAnswer,
  refundResultFromQuery,
} from '../../src/channels/unionpay/transformers.js';
import { money } from '../../src/platform/money.js';
import { fixtureNames, loadCaptureAuthority, loadFixture, type GatewayExchangeFixture, type NotificationFixture } from '../fixtures/unionpay/fixtures.js';

/**
 * The pure transformers on exchanges recorded from the simulator
 * (test/fixtures/unionpay, made by capture.ts): every recorded answer carries
 * a signature that verifies, each maps to the result Fen must see, and the
 * requests the transformers build are the ones that went over the wire.
 */

const authority = loadCaptureAuthority();
const merId = authority.merId;
const capturedAt = new Date(authority.capturedAt);
const trust = trustFrom(authority.rootCertPem, authority.middleCertPem, authority.signerName);

function exchange(name: string): { fixture: GatewayExchangeFixture; answer: Record<string, string> } {
  const fixture = loadFixture<GatewayExchangeFixture>(name);
  return { fixture, answer: parseAnswerText(fixture.responseText) };
}

/** The recorded request without what the connector adds when signing. */
function unsigned(request: Record<string, string>): Record<string, string> {
  const { certId: _certId, signature: _signature, ...rest } = request;
  return rest;
}

describe('recorded answers and notifications', () => {
  it('all carry a signature that verifies with the capture’s root and middle certificates', () => {
    const names = fixtureNames();
    expect(names.length).toBeGreaterThanOrEqual(14);
    for (const name of names) {
      const fixture = loadFixture<GatewayExchangeFixture | NotificationFixture>(name);
      const fields = fixture.kind === 'gateway' ? parseAnswerText(fixture.responseText) : fixture.form;
      expect(verifyUnionpayMessage(fields, trust, capturedAt), name).toEqual({ ok: true });
    }
  });

  it('are read the way UnionPay’s SDKs read them: unencoded, & inside braces kept, the name ending at the first =', () => {
    const { fixture, answer } = exchange('query-paid');
    // UnionPay writes the certificate with CRLF line ends, and no URL encoding.
    expect(fixture.responseText).toContain('signPubKeyCert=-----BEGIN CERTIFICATE-----\r\n');
    expect(answer.signPubKeyCert).toMatch(/^-----BEGIN CERTIFICATE-----\r\n[^&]+\r\n-----END CERTIFICATE-----$/);
    expect(answer.signature).toMatch(/^[A-Za-z0-9+/]+=*$/);
    expect(parseAnswerText('a=1&reserved={x=1&y=2}&sig=ab+c==&empty=')).toEqual({ a: '1', reserved: '{x=1&y=2}', sig: 'ab+c==', empty: '' });
  });
});

describe('payment queries', () => {
  const queryOf = (fixture: GatewayExchangeFixture) => fixture.input as unknown as QueryPaymentRequest;

  it('34 before the payer submits the form is not_found, which keeps the payment open', () => {
    const { fixture, answer } = exchange('query-not-found');
    expect(paymentResultFromQuery(answer, queryOf(fixture), merId)).toEqual({ status: 'not_found', channelCode: '34' });
  });

  it('origRespCode 05 while the payer is on the page is pending', () => {
    const { fixture, answer } = exchange('query-waiting');
    expect(paymentResultFromQuery(answer, queryOf(fixture), merId)).toMatchObject({ status: 'pending', facts: { channelStatus: '05', amount: money(1234n, 'CNY'), paidAt: undefined } });
  });

  it('origRespCode 00 is succeeded, paid at the trace time, with UnionPay’s queryId; another amount is a mismatch', () => {
    const { fixture, answer } = exchange('query-paid');
    const request = queryOf(fixture);
    expect(paymentResultFromQuery(answer, request, merId)).toEqual({
      status: 'succeeded',
      facts: {
        outTradeNo: request.outTradeNo,
        channelTradeNo: answer.queryId,
        amount: money(1234n, 'CNY'),
        channelStatus: '00',
        paidAt: new Date('2026-01-15T02:00:20.000Z'),
        payerChannelId: undefined,
      },
    });
    expect(paymentResultFromQuery(answer, { ...request, expected: money(1233n, 'CNY') }, merId)).toMatchObject({
      status: 'amount_mismatch',
      expected: money(1233n, 'CNY'),
      reported: money(1234n, 'CNY'),
      reportedStatus: 'succeeded',
    });
  });

  it('a cancelled order is failed (declined); 03 is unknown, never failed', () => {
    const failed = exchange('query-failed');
    expect(paymentResultFromQuery(failed.answer, queryOf(failed.fixture), merId)).toMatchObject({ status: 'failed', reason: 'declined', facts: { channelStatus: '01' } });
    const timedOut = exchange('query-resp-code-03');
    expect(paymentResultFromQuery(timedOut.answer, queryOf(timedOut.fixture), merId)).toMatchObject({ status: 'unknown', reason: 'channel_error', channelCode: '03' });
  });

  it('does not believe an answer about another order or merchant, and reads an unlisted code as unknown', () => {
    const { fixture, answer } = exchange('query-paid');
    const request = queryOf(fixture);
    expect(paymentResultFromQuery({ ...answer, orderId: 'pay01kezp33800000000000000009' }, request, merId)).toMatchObject({ status: 'unknown', reason: 'unverifiable' });
    expect(paymentResultFromQuery(answer, request, '777290058110049')).toMatchObject({ status: 'unknown', reason: 'unverifiable' });
    expect(paymentResultFromQuery({ ...answer, txnType: '04' }, request, merId)).toMatchObject({ status: 'unknown', reason: 'unparsable' });
    expect(paymentResultFromQuery({ ...answer, origRespCode: 'Z9' }, request, merId)).toMatchObject({ status: 'unknown', reason: 'unmapped_status', channelCode: 'Z9' });
    expect(paymentResultFromQuery({ ...answer, respCode: 'Z9' }, request, merId)).toMatchObject({ status: 'unknown', reason: 'unmapped_status', channelCode: 'Z9' });
    expect(paymentResultFromQuery({ ...answer, txnAmt: '12.34' }, request, merId)).toMatchObject({ status: 'unknown', reason: 'unparsable' });
    expect(paymentResultFromQuery({ ...answer, currencyCode: '840' }, request, merId)).toMatchObject({ status: 'unknown', reason: 'unparsable' });
  });

  it('builds exactly the query that was recorded', () => {
    const { fixture } = exchange('query-paid');
    expect(queryCall(queryOf(fixture).outTradeNo, merId)).toEqual({ ok: true, call: { endpoint: 'queryTrans', fields: unsigned(fixture.request) } });
    expect(fixture.request.bizType).toBe('000000');
  });
});

describe('closing, answered from a query', () => {
  const close = (name: string) => {
    const { fixture, answer } = exchange(name);
    return closeResultFromQuery(answer, { outTradeNo: (fixture.input as { outTradeNo: string }).outTradeNo }, merId);
  };

  it('an order UnionPay does not know is not_found; a failed one is as good as closed', () => {
    expect(close('query-not-found')).toEqual({ status: 'not_found', channelCode: '34' });
    expect(close('query-failed')).toEqual({ status: 'succeeded' });
  });

  it('a paid or open order cannot be closed, and a 03 is unknown', () => {
    expect(close('query-paid')).toMatchObject({ status: 'failed', reason: 'rejected', channelCode: '00' });
    expect(close('query-waiting')).toMatchObject({ status: 'failed', reason: 'rejected', channelCode: '05' });
    expect(close('query-resp-code-03')).toMatchObject({ status: 'unknown', channelCode: '03' });
  });
});

describe('refunds', () => {
  const refundOf = (fixture: GatewayExchangeFixture) => fixture.input as unknown as RefundRequest;

  it('00 is accepted: pending with this refund’s amount and UnionPay’s numbers, until the notification or a query', () => {
    const { fixture, answer } = exchange('refund-accepted');
    const request = refundOf(fixture);
    expect(refundResultFromAnswer(answer, request, merId)).toEqual({
      status: 'pending',
      facts: {
        outTradeNo: request.outTradeNo,
        outRefundNo: request.outRefundNo,
        channelTradeNo: request.channelTradeNo,
        channelRefundNo: answer.queryId,
        amount: money(200n, 'CNY'),
        totalRefunded: undefined,
        channelStatus: '00',
        refundedAt: undefined,
      },
    });
    expect(refundResultFromAnswer(answer, { ...request, refundAmount: money(201n, 'CNY') }, merId)).toMatchObject({ status: 'amount_mismatch', reportedStatus: 'pending' });
  });

  it('the same refund again is the same answer; the same number with another amount (12) is settled by a query', () => {
    const repeat = exchange('refund-repeat');
    expect(refundResultFromAnswer(repeat.answer, refundOf(repeat.fixture), merId)).toMatchObject({ status: 'pending', facts: { amount: money(200n, 'CNY') } });
    expect(repeat.answer.queryId).toBe(exchange('refund-accepted').answer.queryId);
    const duplicate = exchange('refund-duplicate');
    expect(refundResultFromAnswer(duplicate.answer, refundOf(duplicate.fixture), merId)).toEqual({ status: 'pending', facts: undefined });
  });

  it('a refusal (36 more than is left, 35 no such original) moved no money', () => {
    const exceeds = exchange('refund-exceeds');
    expect(refundResultFromAnswer(exceeds.answer, refundOf(exceeds.fixture), merId)).toMatchObject({ status: 'failed', reason: 'rejected', channelCode: '36' });
    const missing = exchange('refund-original-missing');
    expect(refundResultFromAnswer(missing.answer, refundOf(missing.fixture), merId)).toMatchObject({ status: 'failed', reason: 'rejected', channelCode: '35' });
  });

  it('a refund query with origRespCode 00 is succeeded, refunded at the trace time; 34 is not_found', () => {
    const found = exchange('refund-query-success');
    const request = found.fixture.input as unknown as QueryRefundRequest;
    expect(refundResultFromQuery(found.answer, request, merId)).toMatchObject({
      status: 'succeeded',
      facts: { outTradeNo: request.outTradeNo, outRefundNo: request.outRefundNo, amount: money(200n, 'CNY'), channelStatus: '00', refundedAt: new Date('2026-01-15T02:01:00.000Z') },
    });
    expect(refundResultFromQuery(found.answer, { ...request, expected: money(300n, 'CNY') }, merId)).toMatchObject({ status: 'amount_mismatch' });
    const missing = exchange('refund-query-not-found');
    expect(refundResultFromQuery(missing.answer, missing.fixture.input as unknown as QueryRefundRequest, merId)).toEqual({ status: 'not_found', channelCode: '34' });
  });

  it('builds exactly the refund that was recorded, with the payment’s orderId in reqReserved', () => {
    const { fixture } = exchange('refund-accepted');
    const request = refundOf(fixture);
    const built = refundCall(request, request.channelTradeNo!, { merId, notifyUrl: fixture.request.backUrl! });
    expect(built).toEqual({ ok: true, call: { endpoint: 'backTransReq', fields: unsigned(fixture.request) } });
    expect(fixture.request.reqReserved).toBe(orderIdFor(request.outTradeNo));
  });
});

describe('back notifications', () => {
  it('a payment’s: a payment event with UnionPay’s queryId as its id', () => {
    const fixture = loadFixture<NotificationFixture>('notify-payment-success');
    const parsed = notificationEventFromForm(fixture.form);
    expect(parsed).toMatchObject({
      ok: true,
      event: {
        kind: 'payment',
        notificationId: fixture.form.queryId,
        reportedStatus: 'succeeded',
        facts: { outTradeNo: fenNumberFor(fixture.form.orderId!), amount: money(1234n, 'CNY'), paidAt: new Date('2026-01-15T02:00:20.000Z') },
      },
    });
  });

  it('a refund’s: a refund event naming the refund and, through reqReserved, its payment', () => {
    const fixture = loadFixture<NotificationFixture>('notify-refund-success');
    const parsed = notificationEventFromForm(fixture.form);
    if (!parsed.ok || parsed.event.kind !== 'refund') throw new Error('expected a refund event');
    expect(parsed.event).toMatchObject({ reportedStatus: 'succeeded', facts: { amount: money(200n, 'CNY'), channelRefundNo: fixture.form.queryId, channelTradeNo: fixture.form.origQryId } });
    expect(parsed.event.facts.outRefundNo).toMatch(/^ref_/);
    expect(parsed.event.facts.outTradeNo).toMatch(/^pay_/);
  });

  it('another transaction type is unsupported; a message without its essentials is malformed', () => {
    const fixture = loadFixture<NotificationFixture>('notify-payment-success');
    expect(notificationEventFromForm({ ...fixture.form, txnType: '31' })).toMatchObject({ ok: false, reason: 'unsupported' });
    const { respCode: _respCode, ...withoutRespCode } = fixture.form;
    expect(notificationEventFromForm(withoutRespCode)).toMatchObject({ ok: false, reason: 'malformed' });
    expect(notificationEventFromForm({ ...fixture.form, txnAmt: '' })).toMatchObject({ ok: false, reason: 'malformed' });
  });
});

describe('the consumption form', () => {
  const order: CreatePaymentRequest = {
    method: 'unionpay_web',
    // A ULID made at 2026-01-15T02:00:00.000Z.
    outTradeNo: 'pay_01kezp33800000000000000001',
    amount: money(1234n, 'CNY'),
    subject: '测试 & {订单}=1',
    expiresAt: new Date('2026-01-15T02:30:00.000Z'),
  };
  const defaults = { merId, notifyUrl: 'https://fen.example/channels/unionpay/notify/cha_1', frontUrl: 'https://fen.example/pay/return' };

  it('carries every field UnionPay’s consumption needs, times in Beijing time, the amount in fen', () => {
    expect(consumeCall(order, defaults)).toEqual({
      ok: true,
      call: {
        endpoint: 'frontTransReq',
        fields: {
          version: '5.1.0',
          encoding: 'UTF-8',
          signMethod: '01',
          accessType: '0',
          merId,
          txnType: '01',
          txnSubType: '01',
          bizType: '000201',
          channelType: '07',
          currencyCode: '156',
          txnAmt: '1234',
          orderId: 'pay01kezp33800000000000000001',
          txnTime: '20260115100000',
          payTimeout: '20260115103000',
          backUrl: defaults.notifyUrl,
          frontUrl: defaults.frontUrl,
          riskRateInfo: '{commodityName=测试    订单  1}',
        },
      },
    });
    expect(consumeCall({ ...order, returnUrl: 'https://shop.example/back', notifyUrl: 'https://fen.example/other' }, defaults)).toMatchObject({
      ok: true,
      call: { fields: { frontUrl: 'https://shop.example/back', backUrl: 'https://fen.example/other' } },
    });
  });

  it('refuses what UnionPay cannot carry: another currency, or a number that is not a Fen id', () => {
    expect(consumeCall({ ...order, amount: money(1234n, 'USD') }, defaults)).toMatchObject({ ok: false, channelCode: 'unsupported_currency' });
    expect(consumeCall({ ...order, outTradeNo: 'order-1' }, defaults)).toMatchObject({ ok: false, channelCode: 'unsupported_order_number' });
  });

  it('is an HTML form that posts itself, with every value escaped', () => {
    const html = frontFormHtml('https://gateway.example/frontTransReq.do?a=1&b=2', { riskRateInfo: '{commodityName=<b>"x"</b>}' });
    expect(html).toContain('action="https://gateway.example/frontTransReq.do?a=1&#38;b=2"');
    expect(html).toContain('value="{commodityName=&#60;b&#62;&#34;x&#34;&#60;/b&#62;}"');
    expect(html).toContain(".submit();");
    expect(riskRateInfoFor('a'.repeat(100))).toBe(`{commodityName=${'a'.repeat(64)}}`);
    // A browser would post a line break as CRLF and break the merchant's signature.
    expect(riskRateInfoFor('two\nlines\r\nand\ttab')).toBe('{commodityName=two lines  and tab}');
  });
});

describe('numbers, times and amounts at UnionPay’s edge', () => {
  it('maps Fen numbers to orderIds and back, one to one', () => {
    fc.assert(
      fc.property(fc.constantFrom('pay', 'ref'), fc.stringMatching(/^[0-7][0-9a-hjkmnp-tv-z]{25}$/), (prefix, ulid) => {
        const number = `${prefix}_${ulid}`;
        const orderId = orderIdFor(number)!;
        expect(orderId).toMatch(/^[0-9A-Za-z]{8,40}$/);
        expect(fenNumberFor(orderId)).toBe(number);
      }),
    );
    // Plain order numbers go as they are, unless they would read back as a Fen number.
    expect(orderIdFor('ORDER20260115001')).toBe('ORDER20260115001');
    expect(orderIdFor('pay01kezp33800000000000000001')).toBeUndefined();
    expect(orderIdFor('short')).toBeUndefined();
    expect(orderIdFor('has_underscore_and_more')).toBeUndefined();
  });

  it('takes txnTime from the time inside the Fen number', () => {
    expect(txnTimeFor('pay_01kezp33800000000000000001')).toBe('20260115100000');
    expect(txnTimeFor('ORDER20260115001')).toBeUndefined();
  });

  it('writes and reads Beijing times, refusing dates that do not exist', () => {
    expect(formatBeijingCompact(new Date('2026-01-15T16:30:05Z'))).toBe('20260116003005');
    expect(parseBeijingCompact('20260116003005')).toEqual(new Date('2026-01-15T16:30:05Z'));
    expect(parseBeijingCompact('20260230100000')).toBeUndefined();
    expect(parseBeijingCompact('2026011510000')).toBeUndefined();
  });

  it('gives traceTime the year nearest its order’s txnTime, across New Year too', () => {
    expect(parseTraceTime('0115100020', '20260115100000')).toEqual(new Date('2026-01-15T02:00:20Z'));
    expect(parseTraceTime('0101000500', '20251231235900')).toEqual(new Date('2025-12-31T16:05:00Z'));
    expect(parseTraceTime('1231235959', '20260101000001')).toEqual(new Date('2025-12-31T15:59:59Z'));
    expect(parseTraceTime('0229120000', '20260301000000')).toBeUndefined();
    expect(parseTraceTime(undefined, '20260101000001')).toBeUndefined();
  });

  it('reads txnAmt as whole fen in the currency of currencyCode (CNY when absent)', () => {
    expect(moneyFromTxnAmt('1234', '156')).toEqual(money(1234n, 'CNY'));
    expect(moneyFromTxnAmt('1', undefined)).toEqual(money(1n, 'CNY'));
    expect(moneyFromTxnAmt('12.34', '156')).toBeUndefined();
    expect(moneyFromTxnAmt('-1', '156')).toBeUndefined();
    expect(moneyFromTxnAmt('1234', '840')).toBeUndefined();
    expect(moneyFromTxnAmt('1234567890123', '156')).toBeUndefined();
  });
});
