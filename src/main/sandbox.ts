import { generateKeyPairSync, randomInt } from 'node:crypto';
import { randomBytes } from 'node:crypto';
import type { AlipaySimulator, UnionpaySimulator, WechatpaySimulator } from '../simulators/index.js';
import { createChannelAccount, type ChannelAccountRow } from '../routing/index.js';
import type { Actor } from '../platform/actor.js';
import type { PlatformContext } from '../platform/context.js';

/**
 * Wires Fen to the built-in channel simulators: a fresh key pair for Fen's
 * side, the public half registered with the simulator, and a shared channel
 * account whose settings point at it — exactly what an operator does with a
 * real channel, only with the simulator's gateway URL and public key.
 */
export function rsaKeyPair(): { privateKeyPem: string; publicKeyPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

/** A sixteen-digit Alipay-style app id. */
export function simulatedAlipayAppId(): string {
  return `2021${String(randomInt(10 ** 6)).padStart(6, '0')}${String(randomInt(10 ** 6)).padStart(6, '0')}`;
}

export async function connectAlipaySimulator(
  context: PlatformContext,
  actor: Actor,
  simulator: AlipaySimulator,
  options: { name: string; methods?: string[]; timeoutMs?: number },
): Promise<ChannelAccountRow> {
  const keys = rsaKeyPair();
  const appId = simulatedAlipayAppId();
  await simulator.registerApp({ appId, publicKeyPem: keys.publicKeyPem });
  return createChannelAccount(context, actor, {
    channel: 'alipay',
    name: options.name,
    mode: 'shared',
    merchantId: null,
    methods: options.methods ?? ['alipay_qr', 'alipay_page'],
    settings: { app_id: appId, gateway_url: simulator.gatewayUrl, ...(options.timeoutMs ? { timeout_ms: options.timeoutMs } : {}) },
    secrets: { app_private_key_pem: keys.privateKeyPem, alipay_public_key_pem: simulator.publicKeyPem },
  });
}

export async function connectWechatpaySimulator(
  context: PlatformContext,
  actor: Actor,
  simulator: WechatpaySimulator,
  options: { name: string; methods?: string[]; timeoutMs?: number },
): Promise<ChannelAccountRow> {
  const keys = rsaKeyPair();
  const mchId = `16${String(randomInt(10 ** 8)).padStart(8, '0')}`;
  const merchantSerialNo = randomBytes(20).toString('hex').toUpperCase();
  const apiV3Key = randomBytes(16).toString('hex');
  await simulator.registerMerchant({ mchId, apiV3Key, merchantSerialNo, merchantPublicKeyPem: keys.publicKeyPem });
  return createChannelAccount(context, actor, {
    channel: 'wechatpay',
    name: options.name,
    mode: 'shared',
    merchantId: null,
    methods: options.methods ?? ['wechat_native', 'wechat_h5'],
    settings: {
      mch_id: mchId,
      app_id: `wx${randomBytes(8).toString('hex')}`,
      merchant_serial_no: merchantSerialNo,
      platform_public_key_id: simulator.platformPublicKeyId,
      base_url: simulator.baseUrl,
      ...(options.timeoutMs ? { timeout_ms: options.timeoutMs } : {}),
    },
    secrets: { merchant_private_key_pem: keys.privateKeyPem, platform_public_key_pem: simulator.platformPublicKeyPem, api_v3_key: apiV3Key },
  });
}

export async function connectUnionpaySimulator(
  context: PlatformContext,
  actor: Actor,
  simulator: UnionpaySimulator,
  options: { name: string; timeoutMs?: number },
): Promise<ChannelAccountRow> {
  const merId = `777${String(randomInt(10 ** 12)).padStart(12, '0')}`;
  const issued = await simulator.issueMerchantCertificate(merId);
  const endpoints = simulator.endpoints();
  return createChannelAccount(context, actor, {
    channel: 'unionpay',
    name: options.name,
    mode: 'shared',
    merchantId: null,
    methods: ['unionpay_web'],
    settings: {
      mer_id: merId,
      front_trans_url: endpoints.frontTransUrl,
      back_trans_url: endpoints.backTransUrl,
      single_query_url: endpoints.singleQueryUrl,
      signer_name: endpoints.signerName,
      root_cert_pem: endpoints.rootCertPem,
      middle_cert_pem: endpoints.middleCertPem,
      sign_cert_pem: issued.certificatePem,
      ...(options.timeoutMs ? { timeout_ms: options.timeoutMs } : {}),
    },
    secrets: { sign_private_key_pem: issued.privateKeyPem },
  });
}
