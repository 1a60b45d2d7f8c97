import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { checkNotificationAmount, createConnector, type ChannelConnector } from '../../src/channels/index.js';
import { ManualClock } from '../../src/platform/clock.js';
import { money } from '../../src/platform/money.js';
import { newAppKeys, silentLogger } from '../fixtures/alipay/harness.js';

/**
 * A genuine notification signed by Alipay (from alipay-sdk's own test suite,
 * /work/shared/testdata/alipay) must verify with Alipay's public key through
 * the connector, and must stop verifying when any single field or the
 * signature is changed.
 */

const testdata = '/work/shared/testdata/alipay';
const genuineFormBody = readFileSync(`${testdata}/notify-trade-success.form`, 'utf8').trim();
const genuineJson = JSON.parse(readFileSync(`${testdata}/notify-trade-success.json`, 'utf8')) as Record<string, string>;
const alipayPublicKeyPem = readFileSync(`${testdata}/alipay-public-key.pem`, 'utf8');
const genuineForm = Object.fromEntries(new URLSearchParams(genuineFormBody));
const signedFields = Object.keys(genuineForm).filter((name) => name !== 'sign');

let connector: ChannelConnector;

function connectorFor(appId: string): ChannelConnector {
  return createConnector(
    'alipay',
    {
      channelAccountId: 'cha_genuine',
      appId,
      gatewayUrl: 'https://openapi.alipay.com/gateway.do',
      appPrivateKeyPem: newAppKeys().privateKeyPem,
      alipayPublicKeyPem,
      notifyUrl: 'https://fen.example/channels/alipay/notify/cha_genuine',
      timeoutMs: 5_000,
    },
    { logger: silentLogger, clock: new ManualClock() },
  );
}

beforeAll(() => {
  connector = connectorFor('2019073166072302');
});

async function verified(form: Record<string, string>): Promise<boolean> {
  return (await connector.verifyNotification({ headers: {}, rawBody: new URLSearchParams(form).toString(), form })).verified;
}

describe('the genuine Alipay notification', () => {
  it('verifies with Alipay’s public key and parses into a payment event in fen', async () => {
    const verification = await connector.verifyNotification({ headers: { 'content-type': 'application/x-www-form-urlencoded' }, rawBody: genuineFormBody, form: genuineForm });
    expect(verification.verified).toBe(true);
    if (!verification.verified || verification.event.kind !== 'payment') throw new Error('expected a verified payment event');
    const { event } = verification;
    expect(event).toMatchObject({
      notificationId: '2019081500222155624068450559358070',
      reportedStatus: 'succeeded',
      facts: {
        outTradeNo: '20190815155618536-564-57',
        channelTradeNo: '2019081522001468450512505578',
        amount: { amount: 10n, currency: 'CNY' },
        channelStatus: 'TRADE_SUCCESS',
        payerChannelId: '2088102534368455',
      },
    });
    // gmt_payment 2019-08-15 15:56:24 is Beijing time.
    expect(event.facts.paidAt?.toISOString()).toBe('2019-08-15T07:56:24.000Z');
    expect(checkNotificationAmount(event, money(10n, 'CNY'))).toMatchObject({ status: 'succeeded' });
    expect(checkNotificationAmount(event, money(11n, 'CNY'))).toMatchObject({ status: 'amount_mismatch', expected: money(11n, 'CNY'), reported: money(10n, 'CNY') });
    expect(checkNotificationAmount(event, money(10n, 'USD'))).toMatchObject({ status: 'amount_mismatch' });
  });

  it('verifies from the raw body alone and from the JSON form of the same fields', async () => {
    expect((await connector.verifyNotification({ headers: {}, rawBody: genuineFormBody })).verified).toBe(true);
    expect(await verified(genuineJson)).toBe(true);
  });

  it('is not accepted by an account with another app id, though the signature is Alipay’s', async () => {
    const other = connectorFor('2021000000000001');
    expect(await other.verifyNotification({ headers: {}, rawBody: genuineFormBody })).toMatchObject({ verified: false, reason: 'foreign_account' });
  });

  it('fails when any single field is changed', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...signedFields), fc.string({ maxLength: 40 }), async (field, value) => {
        fc.pre(value !== genuineForm[field]);
        expect(await verified({ ...genuineForm, [field]: value })).toBe(false);
      }),
      { numRuns: 200 },
    );
  });

  it('fails when any single field is removed or one is added', async () => {
    for (const field of signedFields) {
      const { [field]: _removed, ...rest } = genuineForm;
      expect(await verified(rest)).toBe(false);
    }
    await fc.assert(
      fc.asyncProperty(fc.stringMatching(/^[a-z_]{1,12}$/), fc.string({ minLength: 1, maxLength: 20 }), async (field, value) => {
        // sign and sign_type are the only fields outside the signature.
        fc.pre(!(field in genuineForm) && field !== 'sign_type');
        expect(await verified({ ...genuineForm, [field]: value })).toBe(false);
      }),
      { numRuns: 100 },
    );
  });

  it('fails when the signature is changed in any bit, or replaced, or missing', async () => {
    const signature = Buffer.from(genuineForm.sign!, 'base64');
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: signature.length * 8 - 1 }), async (bit) => {
        const changed = Buffer.from(signature);
        changed[bit >> 3]! ^= 1 << (bit & 7);
        expect(await verified({ ...genuineForm, sign: changed.toString('base64') })).toBe(false);
      }),
      { numRuns: 200 },
    );
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 400 }), async (sign) => {
        fc.pre(sign !== genuineForm.sign);
        expect(await verified({ ...genuineForm, sign })).toBe(false);
      }),
      { numRuns: 100 },
    );
    const { sign: _sign, ...unsigned } = genuineForm;
    expect(await connector.verifyNotification({ headers: {}, rawBody: new URLSearchParams(unsigned).toString() })).toMatchObject({ verified: false, reason: 'invalid_signature' });
  });

  it('acknowledges exactly as Alipay expects', () => {
    expect(connector.acknowledgeNotification('accepted').body).toBe('success');
    expect(connector.acknowledgeNotification('rejected').body).not.toBe('success');
  });
});
