import { createCipheriv, createSign, generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { checkNotificationAmount, type InboundNotification } from '../../src/channels/index.js';
import { WechatpayConnector } from '../../src/channels/wechatpay/index.js';
import { ManualClock } from '../../src/platform/clock.js';
import { money } from '../../src/platform/money.js';
import { fixtureNames, loadFixture, type NotificationFixture, type RecordedKeys } from '../fixtures/wechatpay/fixtures.js';
import { newMerchantKeys, silentLogger } from '../fixtures/wechatpay/harness.js';

/**
 * WeChat Pay notifications through the connector: the ones recorded from the
 * simulator verify and decrypt, and so does one made here with the test's own
 * node:crypto; changing any header, any character of the body, the
 * ciphertext (even re-signed), or the time by more than five minutes makes it
 * fail, as does a notification for another merchant.
 */

const merchantKeys = newMerchantKeys();

function connectorFor(keys: RecordedKeys, clock: ManualClock): WechatpayConnector {
  return new WechatpayConnector(
    {
      channelAccountId: 'cha_unit',
      mchId: keys.mchId,
      appId: keys.appId,
      merchantSerialNo: merchantKeys.serialNo,
      merchantPrivateKeyPem: merchantKeys.privateKeyPem,
      platformPublicKeyId: keys.platformPublicKeyId,
      platformPublicKeyPem: keys.platformPublicKeyPem,
      apiV3Key: keys.apiV3Key,
      baseUrl: 'https://api.mch.weixin.qq.com/',
      notifyUrl: 'https://fen.example/channels/wechatpay/notify/cha_unit',
      timeoutMs: 5_000,
    },
    { logger: silentLogger, clock },
  );
}

describe('the notifications recorded from the simulator', () => {
  const recorded = fixtureNames().filter((name) => name.startsWith('notify-')).map((name) => loadFixture<NotificationFixture>(name));

  it('are all here', () => {
    expect(recorded.map((fixture) => fixture.name)).toEqual(['notify-refund-abnormal', 'notify-refund-success', 'notify-transaction-success']);
  });

  for (const fixture of recorded) {
    it(`${fixture.name} verifies at the time it was signed, and not six minutes later`, async () => {
      const clock = new ManualClock(new Date(Number(fixture.headers['wechatpay-timestamp']) * 1000));
      const connector = connectorFor(fixture.keys, clock);
      const notification: InboundNotification = { headers: fixture.headers, rawBody: fixture.rawBody };
      expect((await connector.verifyNotification(notification)).verified).toBe(true);
      clock.advanceSeconds(360);
      expect(await connector.verifyNotification(notification)).toMatchObject({ verified: false, reason: 'invalid_signature' });
    });
  }

  it('carry the events the simulator meant', async () => {
    const events = await Promise.all(
      recorded.map(async (fixture) => {
        const connector = connectorFor(fixture.keys, new ManualClock(new Date(Number(fixture.headers['wechatpay-timestamp']) * 1000)));
        const verification = await connector.verifyNotification({ headers: fixture.headers, rawBody: fixture.rawBody });
        if (!verification.verified) throw new Error(verification.message);
        return verification.event;
      }),
    );
    const [abnormal, refunded, paid] = events;
    expect(paid).toMatchObject({ kind: 'payment', notificationId: expect.stringMatching(/^EV-/), reportedStatus: 'succeeded', facts: { outTradeNo: 'pay_fixture_paid', amount: money(1234n, 'CNY') } });
    expect(checkNotificationAmount(paid!, money(1234n, 'CNY'))).toMatchObject({ status: 'succeeded', facts: { paidAt: new Date('2026-01-15T02:00:20Z') } });
    expect(refunded).toMatchObject({ kind: 'refund', reportedStatus: 'succeeded', facts: { outRefundNo: 'ref_fixture_1', amount: money(200n, 'CNY'), channelStatus: 'SUCCESS' } });
    expect(checkNotificationAmount(refunded!, money(200n, 'CNY'))).toMatchObject({ status: 'succeeded' });
    expect(abnormal).toMatchObject({ kind: 'refund', reportedStatus: 'pending', facts: { outRefundNo: 'ref_fixture_3', channelStatus: 'ABNORMAL' } });
  });
});

// ---------------------------------------------------------------------------
// Notifications made here, so that every part can be changed and re-signed.

const platform = generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
const keys: RecordedKeys = {
  mchId: '1900000109',
  appId: 'wxd678efh567hg6787',
  platformPublicKeyId: 'PUB_KEY_ID_01142321349124100000000000000001',
  platformPublicKeyPem: platform.publicKey,
  apiV3Key: 'abcdefghijklmnopqrstuvwxyz012345',
};
const signedAt = new Date('2026-01-15T02:00:00Z');
const timestamp = String(signedAt.getTime() / 1000);
const paidResource = {
  mchid: keys.mchId,
  appid: keys.appId,
  out_trade_no: 'pay_unit',
  transaction_id: '4200000000202601150000000001',
  trade_type: 'NATIVE',
  trade_state: 'SUCCESS',
  success_time: '2026-01-15T10:00:00+08:00',
  payer: { openid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o' },
  amount: { total: 100, payer_total: 100, currency: 'CNY', payer_currency: 'CNY' },
};

interface Parts {
  eventType?: string;
  resource?: unknown;
  plaintext?: string;
  associatedData?: string;
  algorithm?: string;
  apiV3Key?: string;
  changeCiphertext?: (ciphertext: Buffer) => Buffer;
}

function encrypted(parts: Parts): Record<string, string> {
  const nonce = 'n0nce12chars';
  const associatedData = parts.associatedData ?? 'transaction';
  const cipher = createCipheriv('aes-256-gcm', Buffer.from(parts.apiV3Key ?? keys.apiV3Key), Buffer.from(nonce));
  cipher.setAAD(Buffer.from('transaction'));
  const plaintext = parts.plaintext ?? JSON.stringify(parts.resource ?? paidResource);
  const bytes = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
  const ciphertext = (parts.changeCiphertext ?? ((same) => same))(bytes).toString('base64');
  return { original_type: 'transaction', algorithm: parts.algorithm ?? 'AEAD_AES_256_GCM', ciphertext, associated_data: associatedData, nonce };
}

function sign(body: string, at: string = timestamp, nonce = 'nonce-of-the-notification', privateKeyPem: string = platform.privateKey): Record<string, string> {
  return {
    'wechatpay-timestamp': at,
    'wechatpay-nonce': nonce,
    'wechatpay-signature': createSign('RSA-SHA256').update(`${at}\n${nonce}\n${body}\n`).sign(privateKeyPem, 'base64'),
    'wechatpay-serial': keys.platformPublicKeyId,
    'wechatpay-signature-type': 'WECHATPAY2-SHA256-RSA2048',
  };
}

function made(parts: Parts = {}, at?: string): InboundNotification {
  const envelope = {
    id: 'EV-2026011510000000000001',
    create_time: '2026-01-15T10:00:00+08:00',
    resource_type: 'encrypt-resource',
    event_type: parts.eventType ?? 'TRANSACTION.SUCCESS',
    summary: '支付成功',
    resource: encrypted(parts),
  };
  const rawBody = JSON.stringify(envelope);
  return { headers: sign(rawBody, at), rawBody };
}

const connector = connectorFor(keys, new ManualClock(signedAt));

async function verdict(notification: InboundNotification): Promise<unknown> {
  const verification = await connector.verifyNotification(notification);
  return verification.verified ? 'verified' : verification.reason;
}

describe('a notification made with the platform key and the APIv3 key', () => {
  it('verifies, decrypts and reads as a payment event', async () => {
    const verification = await connector.verifyNotification(made());
    expect(verification).toMatchObject({ verified: true, event: { kind: 'payment', notificationId: 'EV-2026011510000000000001', facts: { outTradeNo: 'pay_unit', amount: money(100n, 'CNY') } } });
  });

  it('fails when any header is missing, changed, or sent twice', async () => {
    const genuine = made();
    for (const name of ['wechatpay-timestamp', 'wechatpay-nonce', 'wechatpay-signature', 'wechatpay-serial']) {
      const { [name]: _removed, ...rest } = genuine.headers;
      expect(await verdict({ ...genuine, headers: rest }), `without ${name}`).toBe('invalid_signature');
    }
    const changes: Record<string, string> = {
      'wechatpay-timestamp': String(Number(timestamp) + 1),
      'wechatpay-nonce': 'another-nonce',
      'wechatpay-signature': sign('something else')['wechatpay-signature']!,
      'wechatpay-serial': 'PUB_KEY_ID_01142321349124100000000000000002',
      'wechatpay-signature-type': 'WECHATPAY2-SHA256-RSA1024',
    };
    for (const [name, value] of Object.entries(changes)) expect(await verdict({ ...genuine, headers: { ...genuine.headers, [name]: value } }), name).toBe('invalid_signature');
    const twice = { ...genuine.headers, 'wechatpay-signature': [genuine.headers['wechatpay-signature'] as string, genuine.headers['wechatpay-signature'] as string] };
    expect(await verdict({ ...genuine, headers: twice })).toBe('invalid_signature');
    // WeChat Pay's own probe of whether merchants check signatures.
    expect(await verdict({ ...genuine, headers: { ...genuine.headers, 'wechatpay-signature': 'WECHATPAY/SIGNTEST/Y2hlY2s=' } })).toBe('invalid_signature');
  });

  it('fails when any one character of the body changes', async () => {
    const genuine = made();
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: genuine.rawBody.length - 1 }), async (index) => {
        const character = genuine.rawBody[index] === 'A' ? 'B' : 'A';
        const rawBody = `${genuine.rawBody.slice(0, index)}${character}${genuine.rawBody.slice(index + 1)}`;
        expect(await verdict({ headers: genuine.headers, rawBody })).toBe('invalid_signature');
      }),
      { numRuns: 60 },
    );
  });

  it('accepts a signature up to 300 s from the injected clock, and not 301 s', async () => {
    for (const offsetSeconds of [-300, 300]) expect(await verdict(made({}, String(Number(timestamp) + offsetSeconds))), String(offsetSeconds)).toBe('verified');
    for (const offsetSeconds of [-301, 301, 86_400]) expect(await verdict(made({}, String(Number(timestamp) + offsetSeconds))), String(offsetSeconds)).toBe('invalid_signature');
    expect(await verdict(made({}, 'soon'))).toBe('invalid_signature');
  });

  it('fails when the ciphertext, its associated data or the key differ, even with a valid signature over the body', async () => {
    const flipped = (bytes: Buffer) => Buffer.from(bytes.map((byte, index) => (index === 3 ? byte ^ 1 : byte)));
    expect(await verdict(made({ changeCiphertext: flipped }))).toBe('invalid_signature');
    expect(await verdict(made({ changeCiphertext: (bytes) => bytes.subarray(0, bytes.length - 4) }))).toBe('invalid_signature');
    expect(await verdict(made({ changeCiphertext: (bytes) => bytes.subarray(0, 12) }))).toBe('invalid_signature');
    expect(await verdict(made({ associatedData: 'refund' }))).toBe('invalid_signature');
    expect(await verdict(made({ apiV3Key: 'ABCDEFGHIJKLMNOPQRSTUVWXYZ012345' }))).toBe('invalid_signature');
    expect(await verdict(made({ algorithm: 'AEAD_SM4_GCM' }))).toBe('unsupported');
  });

  it('refuses a genuine notification for another merchant, another event, or an unreadable one', async () => {
    expect(await verdict(made({ resource: { ...paidResource, mchid: '1900000999' } }))).toBe('foreign_account');
    expect(await verdict(made({ eventType: 'MCHTRANSFER.BILL.FINISHED' }))).toBe('unsupported');
    expect(await verdict(made({ plaintext: 'not json' }))).toBe('malformed');
    expect(await verdict(made({ resource: { ...paidResource, amount: { total: '100' } } }))).toBe('malformed');
    const notJson = 'not json';
    expect(await verdict({ headers: sign(notJson), rawBody: notJson })).toBe('malformed');
    const noResource = JSON.stringify({ id: 'EV-1', event_type: 'TRANSACTION.SUCCESS' });
    expect(await verdict({ headers: sign(noResource), rawBody: noResource })).toBe('malformed');
  });

  it('trusts the signed raw body, never a parsed copy beside it', async () => {
    const genuine = made();
    const parsed = JSON.parse(genuine.rawBody) as Record<string, unknown>;
    expect(await verdict({ ...genuine, json: { ...parsed, event_type: 'REFUND.SUCCESS' } })).toBe('verified');
  });

  it('is answered as WeChat Pay expects', () => {
    expect(connector.acknowledgeNotification('accepted')).toEqual({ statusCode: 204, contentType: 'application/json; charset=utf-8', body: '' });
    const rejected = connector.acknowledgeNotification('rejected');
    expect(rejected.statusCode).toBeGreaterThanOrEqual(400);
    expect(JSON.parse(rejected.body)).toEqual({ code: 'FAIL', message: '失败' });
  });
});

describe('the connector’s configuration', () => {
  it('refuses an APIv3 key that is not 32 characters', () => {
    expect(() => connectorFor({ ...keys, apiV3Key: 'short' }, new ManualClock())).toThrow(/32 characters/);
  });
});
