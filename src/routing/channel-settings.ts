import { z } from 'zod';
import { channelMethods, type ChannelAccountConfigs, type ChannelCode, type ImplementedChannel } from '../channels/index.js';
import { limits } from '../platform/limits.js';

/**
 * What an operator enters for a channel account, per channel: plain settings
 * (stored as JSON) and secrets (sealed at rest, never returned). Pointing Fen at
 * the real channel instead of a simulator changes only these values.
 */
const pem = z.string().min(64).max(16_384).refine((text) => text.includes('-----BEGIN'), 'must be a PEM block');

export const channelSettingsSchemas = {
  alipay: {
    settings: z.object({
      app_id: z.string().min(1).max(64),
      gateway_url: z.url(),
      timeout_ms: z.number().int().min(100).max(60_000).default(limits.channelCallTimeoutMs),
    }),
    secrets: z.object({ app_private_key_pem: pem, alipay_public_key_pem: pem }),
  },
  wechatpay: {
    settings: z.object({
      mch_id: z.string().regex(/^\d{8,12}$/),
      app_id: z.string().min(1).max(32),
      merchant_serial_no: z.string().regex(/^[0-9A-Fa-f]{8,64}$/),
      platform_public_key_id: z.string().min(1).max(64),
      base_url: z.url(),
      timeout_ms: z.number().int().min(100).max(60_000).default(limits.channelCallTimeoutMs),
    }),
    secrets: z.object({ merchant_private_key_pem: pem, platform_public_key_pem: pem, api_v3_key: z.string().length(32) }),
  },
  unionpay: {
    settings: z.object({
      mer_id: z.string().regex(/^\d{15}$/),
      front_trans_url: z.url(),
      back_trans_url: z.url(),
      single_query_url: z.url(),
      // UnionPay serves bills from its own host (filedownload.95516.com); absent, the gateway's is used.
      file_trans_url: z.url().optional(),
      signer_name: z.string().min(1).max(128).optional(),
      // UnionPay's root and middle certificates and the merchant's own certificate are public.
      root_cert_pem: pem,
      middle_cert_pem: pem,
      sign_cert_pem: pem,
      timeout_ms: z.number().int().min(100).max(60_000).default(limits.channelCallTimeoutMs),
    }),
    secrets: z.object({ sign_private_key_pem: pem }),
  },
} as const satisfies Record<ImplementedChannel, { settings: z.ZodType; secrets: z.ZodType }>;

export type ChannelSettings<C extends ImplementedChannel> = z.output<(typeof channelSettingsSchemas)[C]['settings']>;
export type ChannelSecrets<C extends ImplementedChannel> = z.output<(typeof channelSettingsSchemas)[C]['secrets']>;

export function methodsOf(channel: ChannelCode): readonly string[] {
  return channelMethods[channel];
}

/** The connector configuration for an account, from its settings and opened secrets. */
export function connectorConfig<C extends ImplementedChannel>(
  channel: C,
  options: { channelAccountId: string; settings: unknown; secrets: unknown; publicUrl: string },
): ChannelAccountConfigs[C] {
  const notifyUrl = `${options.publicUrl}/channels/${channel}/notify/${options.channelAccountId}`;
  switch (channel) {
    case 'alipay': {
      const settings = channelSettingsSchemas.alipay.settings.parse(options.settings);
      const secrets = channelSettingsSchemas.alipay.secrets.parse(options.secrets);
      return {
        channelAccountId: options.channelAccountId,
        appId: settings.app_id,
        gatewayUrl: settings.gateway_url,
        appPrivateKeyPem: secrets.app_private_key_pem,
        alipayPublicKeyPem: secrets.alipay_public_key_pem,
        notifyUrl,
        returnUrl: `${options.publicUrl}/pay/return`,
        timeoutMs: settings.timeout_ms,
      } satisfies ChannelAccountConfigs['alipay'] as ChannelAccountConfigs[C];
    }
    case 'wechatpay': {
      const settings = channelSettingsSchemas.wechatpay.settings.parse(options.settings);
      const secrets = channelSettingsSchemas.wechatpay.secrets.parse(options.secrets);
      return {
        channelAccountId: options.channelAccountId,
        mchId: settings.mch_id,
        appId: settings.app_id,
        merchantSerialNo: settings.merchant_serial_no,
        merchantPrivateKeyPem: secrets.merchant_private_key_pem,
        platformPublicKeyId: settings.platform_public_key_id,
        platformPublicKeyPem: secrets.platform_public_key_pem,
        apiV3Key: secrets.api_v3_key,
        baseUrl: settings.base_url,
        notifyUrl,
        returnUrl: `${options.publicUrl}/pay/return`,
        timeoutMs: settings.timeout_ms,
      } satisfies ChannelAccountConfigs['wechatpay'] as ChannelAccountConfigs[C];
    }
    case 'unionpay': {
      const settings = channelSettingsSchemas.unionpay.settings.parse(options.settings);
      const secrets = channelSettingsSchemas.unionpay.secrets.parse(options.secrets);
      return {
        channelAccountId: options.channelAccountId,
        merId: settings.mer_id,
        signCertPem: settings.sign_cert_pem,
        signPrivateKeyPem: secrets.sign_private_key_pem,
        rootCertPem: settings.root_cert_pem,
        middleCertPem: settings.middle_cert_pem,
        ...(settings.signer_name ? { signerName: settings.signer_name } : {}),
        frontTransUrl: settings.front_trans_url,
        backTransUrl: settings.back_trans_url,
        singleQueryUrl: settings.single_query_url,
        ...(settings.file_trans_url ? { fileTransUrl: settings.file_trans_url } : {}),
        notifyUrl,
        frontUrl: `${options.publicUrl}/pay/return`,
        timeoutMs: settings.timeout_ms,
      } satisfies ChannelAccountConfigs['unionpay'] as ChannelAccountConfigs[C];
    }
    default:
      throw new Error(`no connector configuration for channel ${channel}`);
  }
}
