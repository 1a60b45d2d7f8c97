import type { KeyObject } from 'node:crypto';
import { Aes, Formatter, Rsa } from 'wechatpay-axios-plugin';
import type { InboundNotification, NotificationAcknowledgement, NotificationRejection, NotificationVerification } from '../connector.js';
import { notificationEventFromResource } from './transformers.js';

/**
 * WeChat Pay API v3 notifications: a JSON envelope signed like an API answer
 * (RSA-SHA256 over `timestamp\nnonce\nbody\n`, in the Wechatpay-* headers)
 * whose `resource` is encrypted with the merchant's APIv3 key
 * (AEAD_AES_256_GCM, the nonce and associated_data beside the ciphertext).
 * The signature is checked first, with the SDK's own message layout and RSA
 * verifier, so a notification is verified exactly as an API answer is; only
 * then is the resource decrypted, and a resource that does not decrypt is
 * refused as firmly as a bad signature, because the GCM tag is what proves it
 * came from someone holding the key.
 */

/** WeChat Pay's (and the SDK's) window: a signature more than five minutes from now is refused. */
export const signatureClockSkewSecondsMax = 300;
export const signatureType = 'WECHATPAY2-SHA256-RSA2048';
export const resourceAlgorithm = 'AEAD_AES_256_GCM';
/** The APIv3 key is 32 ASCII characters, used as the 256-bit AES key itself. */
export const apiV3KeyLength = 32;
const gcmTagBytes = 16;

export interface NotificationKeys {
  /** PUB_KEY_ID_… of the platform public key (or a platform certificate's serial). */
  platformPublicKeyId: string;
  platformPublicKey: KeyObject;
  apiV3Key: Buffer;
  mchId: string;
}

type Check<T> = { ok: true; value: T } | { ok: false; reason: NotificationRejection; message: string };

function rejected(reason: NotificationRejection, message: string): { ok: false; reason: NotificationRejection; message: string } {
  return { ok: false, reason, message };
}

/** One header's value; a header sent twice is ambiguous and counts as absent. */
function headerOf(headers: InboundNotification['headers'], name: string): string | undefined {
  const value = headers[name];
  if (Array.isArray(value)) return value.length === 1 ? value[0] : undefined;
  return value === undefined || value === '' ? undefined : value;
}

/** Checks the Wechatpay-* headers against the raw body and the injected clock's time. */
export function verifyNotificationSignature(notification: InboundNotification, keys: NotificationKeys, now: Date): Check<true> {
  const timestamp = headerOf(notification.headers, 'wechatpay-timestamp');
  const nonce = headerOf(notification.headers, 'wechatpay-nonce');
  const signature = headerOf(notification.headers, 'wechatpay-signature');
  const serial = headerOf(notification.headers, 'wechatpay-serial');
  const type = headerOf(notification.headers, 'wechatpay-signature-type');
  if (!timestamp || !nonce || !signature || !serial) return rejected('invalid_signature', 'the Wechatpay-Timestamp, -Nonce, -Signature or -Serial header is missing');
  if (type !== undefined && type !== signatureType) return rejected('invalid_signature', `unsupported signature type ${type}`);
  if (!/^\d{1,12}$/.test(timestamp)) return rejected('invalid_signature', 'Wechatpay-Timestamp is not a Unix time');
  const skewSeconds = Math.abs(Math.floor(now.getTime() / 1000) - Number(timestamp));
  if (skewSeconds > signatureClockSkewSecondsMax) return rejected('invalid_signature', `the notification was signed ${skewSeconds} s away from now`);
  // A notification signed with another key (a rotation Fen has not been told about) cannot be checked here.
  if (serial !== keys.platformPublicKeyId) return rejected('invalid_signature', `signed with key ${serial}, not the configured ${keys.platformPublicKeyId}`);
  let valid: boolean;
  try {
    valid = Rsa.verify(Formatter.response(timestamp, nonce, notification.rawBody), signature, keys.platformPublicKey);
  } catch {
    valid = false;
  }
  // WeChat Pay itself sometimes sends a deliberately wrong signature ("WECHATPAY/SIGNTEST/…") to see that merchants check.
  return valid ? { ok: true, value: true } : rejected('invalid_signature', 'the signature does not verify with the platform public key');
}

export interface NotificationEnvelope {
  id: string | undefined;
  eventType: string;
  resource: { algorithm: string; ciphertext: string; nonce: string; associatedData: string; originalType: string | undefined };
}

/**
 * The envelope's fields, always from the raw body: that is what the signature
 * covers, so a `json` the HTTP layer parsed is not consulted.
 */
export function parseEnvelope(rawBody: string): Check<NotificationEnvelope> {
  let json: unknown;
  try {
    json = JSON.parse(rawBody) as unknown;
  } catch {
    return rejected('malformed', 'the body is not JSON');
  }
  if (typeof json !== 'object' || json === null) return rejected('malformed', 'the body is not a JSON object');
  const body = json as Record<string, unknown>;
  const resource = body.resource as Record<string, unknown> | undefined;
  const text = (value: unknown) => (typeof value === 'string' ? value : undefined);
  const eventType = text(body.event_type);
  if (eventType === undefined || typeof resource !== 'object' || resource === null) return rejected('malformed', 'no event_type or resource');
  const [algorithm, ciphertext, nonce] = [text(resource.algorithm), text(resource.ciphertext), text(resource.nonce)];
  if (algorithm === undefined || ciphertext === undefined || nonce === undefined) return rejected('malformed', 'the resource lacks algorithm, ciphertext or nonce');
  return {
    ok: true,
    value: {
      id: text(body.id),
      eventType,
      resource: { algorithm, ciphertext, nonce, associatedData: text(resource.associated_data) ?? '', originalType: text(resource.original_type) },
    },
  };
}

/** AEAD_AES_256_GCM with the APIv3 key: the plaintext, or a refusal when the tag does not check. */
export function decryptResource(resource: NotificationEnvelope['resource'], apiV3Key: Buffer): Check<string> {
  if (resource.algorithm !== resourceAlgorithm) return rejected('unsupported', `resource algorithm ${resource.algorithm}`);
  // The SDK takes the last 16 bytes as the tag; anything shorter cannot hold one, and must not be tried with a shorter tag.
  if (Buffer.from(resource.ciphertext, 'base64').length <= gcmTagBytes) return rejected('invalid_signature', 'the ciphertext is too short to carry its tag');
  try {
    return { ok: true, value: Aes.AesGcm.decrypt(resource.ciphertext, apiV3Key, resource.nonce, resource.associatedData) };
  } catch {
    return rejected('invalid_signature', 'the resource does not decrypt with this account’s APIv3 key');
  }
}

/**
 * Signature, then envelope, then decryption, then the merchant: a genuine
 * notification for another merchant is not Fen's to act on.
 */
export function verifyWechatpayNotification(notification: InboundNotification, keys: NotificationKeys, now: Date): NotificationVerification {
  const signature = verifyNotificationSignature(notification, keys, now);
  if (!signature.ok) return { verified: false, reason: signature.reason, message: signature.message };
  const envelope = parseEnvelope(notification.rawBody);
  if (!envelope.ok) return { verified: false, reason: envelope.reason, message: envelope.message };
  const plaintext = decryptResource(envelope.value.resource, keys.apiV3Key);
  if (!plaintext.ok) return { verified: false, reason: plaintext.reason, message: plaintext.message };
  let resource: unknown;
  try {
    resource = JSON.parse(plaintext.value) as unknown;
  } catch {
    return { verified: false, reason: 'malformed', message: 'the decrypted resource is not JSON' };
  }
  const mchId = typeof resource === 'object' && resource !== null ? (resource as Record<string, unknown>).mchid : undefined;
  if (mchId !== keys.mchId) return { verified: false, reason: 'foreign_account', message: `the notification is for merchant ${String(mchId ?? '(none)')}` };
  const parsed = notificationEventFromResource(envelope.value.eventType, envelope.value.id, resource);
  if (!parsed.ok) return { verified: false, reason: parsed.reason, message: parsed.message };
  return { verified: true, event: parsed.event };
}

/**
 * WeChat Pay's replies: 200 or 204 stops its retries; anything else (4xx or
 * 5xx, with a `{code: "FAIL", message}` body) makes it try again on its
 * schedule. A refused notification is answered 400: the request was not
 * acceptable, and Fen did not fail.
 */
export const acknowledgements = {
  accepted: { statusCode: 204, contentType: 'application/json; charset=utf-8', body: '' },
  rejected: { statusCode: 400, contentType: 'application/json; charset=utf-8', body: '{"code":"FAIL","message":"失败"}' },
} as const satisfies Record<'accepted' | 'rejected', NotificationAcknowledgement>;
