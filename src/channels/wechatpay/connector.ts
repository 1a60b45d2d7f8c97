import { createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import { Rsa, Wechatpay } from 'wechatpay-axios-plugin';
import { unixSeconds } from '../../platform/clock.js';
import type { Logger } from '../../platform/logging.js';
import type {
  BillRequest,
  BillResult,
  ChannelConnector,
  ClosePaymentRequest,
  ClosePaymentResult,
  ConnectorDependencies,
  CreatePaymentRequest,
  CreatePaymentResult,
  InboundNotification,
  NotificationAcknowledgement,
  NotificationVerification,
  PaymentMethod,
  PaymentStatusResult,
  QueryPaymentRequest,
  QueryRefundRequest,
  RefundRequest,
  RefundResult,
  UnknownAnswer,
} from '../connector.js';
import { channelMethods } from '../connector.js';
import { downloadWechatpayBill, type WechatpayGetEndpoint } from './bill.js';
import { acknowledgements, apiV3KeyLength, verifyWechatpayNotification, type NotificationKeys } from './notification.js';
import {
  closeCall,
  closeResultFromAnswer,
  createCall,
  createResultFromAnswer,
  jsapiSignContent,
  paymentResultFromAnswer,
  queryCall,
  refundCall,
  refundQueryCall,
  refundResultFromAnswer,
  refundResultFromQuery,
  type WechatpayAnswer,
  type WechatpayCall,
} from './transformers.js';

/** What one WeChat Pay merchant account needs; pointing at real WeChat Pay is only a matter of these values. */
export interface WechatpayAccountConfig {
  channelAccountId: string;
  /** 商户号, the merchant id. */
  mchId: string;
  /** The AppID bound to the merchant (official account, mini program or app) that orders are made for. */
  appId: string;
  /** The serial number of the merchant's API certificate (商户API证书序列号), sent with every signed request. */
  merchantSerialNo: string;
  /** The merchant's API private key (apiclient_key.pem). */
  merchantPrivateKeyPem: string;
  /** The WeChat Pay public key's id, PUB_KEY_ID_… (or a platform certificate's serial number). */
  platformPublicKeyId: string;
  /** The WeChat Pay public key (or the platform certificate) that answers and notifications are checked with. */
  platformPublicKeyPem: string;
  /** The 32-character APIv3 key that notifications are encrypted with. */
  apiV3Key: string;
  /** https://api.mch.weixin.qq.com/ or a simulator's base URL. */
  baseUrl: string;
  /** Fen's channel endpoint for this account: /channels/wechatpay/notify/<channel account>. */
  notifyUrl: string;
  /** Where WeChat's H5 cashier sends the payer back, unless a payment names its own return URL. */
  returnUrl?: string;
  timeoutMs: number;
}

type ApiOutcome = { ok: true; answer: WechatpayAnswer } | { ok: false; unknown: UnknownAnswer };

/** The part of an axios error the connector reads; the rest (its config holds the private key) is never touched. */
interface HttpClientError {
  isAxiosError: true;
  code?: string;
  response?: { status: number; data: unknown };
}

function isHttpClientError(error: unknown): error is HttpClientError {
  return typeof error === 'object' && error !== null && (error as { isAxiosError?: unknown }).isAxiosError === true;
}

/** The SDK's answer-verification failures, by its error codes; its messages quote the signature, so they are never logged. */
const verificationFailures: Record<string, string> = {
  EV3_RES_HEADERS_INCOMPLATE: 'the answer carries no Wechatpay-* signature headers',
  EV3_RES_HEADER_TIMESTAMP_OFFSET: 'the answer was signed more than five minutes from now',
  EV3_RES_HEADER_PLATFORM_SERIAL: 'the answer is signed with a key other than the configured platform public key',
  EV3_RES_HEADER_SIGNATURE_DIGEST: 'the answer signature does not verify with the platform public key',
};

const timeoutCodes = new Set(['ECONNABORTED', 'ETIMEDOUT']);

/**
 * What a failed call means. An error answer (4xx, 5xx) is an answer, and the
 * transformers read it; everything else — a timeout, a connection that failed,
 * an answer the SDK could not verify — is `unknown`: the request may or may not
 * have taken effect. The SDK, like WeChat Pay's own SDKs, verifies only 2xx
 * answers, so an error answer is read as sent; none of them can make Fen
 * believe that money moved.
 */
export function outcomeFromError(error: unknown): ApiOutcome {
  if (!isHttpClientError(error)) {
    return { ok: false, unknown: { status: 'unknown', reason: 'unparsable', message: `the call failed (${(error as Error)?.name ?? 'error'})` } };
  }
  const verificationFailure = error.code === undefined ? undefined : verificationFailures[error.code];
  if (verificationFailure !== undefined) return { ok: false, unknown: { status: 'unknown', reason: 'unverifiable', channelCode: error.code, message: verificationFailure } };
  if (error.response) return { ok: true, answer: { httpStatus: error.response.status, body: error.response.data } };
  if (error.code !== undefined && timeoutCodes.has(error.code)) return { ok: false, unknown: { status: 'unknown', reason: 'timeout', message: 'no answer within the timeout' } };
  return { ok: false, unknown: { status: 'unknown', reason: 'network', message: `the request failed (${error.code ?? 'no code'})` } };
}

/** The SDK's request surface the connector uses: a path chained onto the client, then the verb. */
interface WechatpayEndpoint {
  get(config: Record<string, unknown>): Promise<{ status: number; data: unknown }>;
  post(data: unknown, config: Record<string, unknown>): Promise<{ status: number; data: unknown }>;
}

export class WechatpayConnector implements ChannelConnector {
  readonly channel = 'wechatpay' as const;
  readonly channelAccountId: string;
  readonly methods: readonly PaymentMethod[] = channelMethods.wechatpay;
  private readonly client: Wechatpay;
  private readonly merchantPrivateKey: KeyObject;
  private readonly notificationKeys: NotificationKeys;
  private readonly logger: Logger;

  constructor(
    private readonly config: WechatpayAccountConfig,
    private readonly dependencies: ConnectorDependencies,
  ) {
    // A wrong key length is a configuration mistake: say so now, not as unverifiable notifications later.
    if (Buffer.byteLength(config.apiV3Key, 'utf8') !== apiV3KeyLength) throw new Error(`the APIv3 key of ${config.channelAccountId} must be ${apiV3KeyLength} characters`);
    this.channelAccountId = config.channelAccountId;
    this.logger = dependencies.logger.child({ channel: 'wechatpay', channelAccountId: config.channelAccountId });
    this.merchantPrivateKey = Rsa.from(config.merchantPrivateKeyPem, Rsa.KEY_TYPE_PRIVATE);
    const platformPublicKey = createPublicKey(config.platformPublicKeyPem);
    this.notificationKeys = { platformPublicKeyId: config.platformPublicKeyId, platformPublicKey, apiV3Key: Buffer.from(config.apiV3Key, 'utf8'), mchId: config.mchId };
    this.client = new Wechatpay({
      mchid: config.mchId,
      serial: config.merchantSerialNo,
      privateKey: config.merchantPrivateKeyPem,
      // The platform public key mode: answers must be signed by this key id, and the SDK verifies every 2xx answer.
      certs: { [config.platformPublicKeyId]: platformPublicKey },
      baseURL: config.baseUrl.endsWith('/') ? config.baseUrl : `${config.baseUrl}/`,
      timeout: config.timeoutMs,
      // WeChat Pay's API never redirects; following one would send a signed request somewhere else.
      maxRedirects: 0,
    });
  }

  async createPayment(request: CreatePaymentRequest): Promise<CreatePaymentResult> {
    const prepared = createCall(request, this.config);
    if (!prepared.ok) return prepared.refusal;
    const outcome = await this.execute(prepared.call);
    if (!outcome.ok) return this.observed(prepared.call, outcome.unknown);
    const options = { returnUrl: request.returnUrl ?? this.config.returnUrl, jsapiParameters: (prepayId: string) => this.jsapiParameters(prepayId) };
    return this.observed(prepared.call, createResultFromAnswer(outcome.answer, prepared.call, options));
  }

  async queryPayment(request: QueryPaymentRequest): Promise<PaymentStatusResult> {
    const call = queryCall(request, this.config);
    const outcome = await this.execute(call);
    return this.observed(call, outcome.ok ? paymentResultFromAnswer(outcome.answer, request) : outcome.unknown);
  }

  async closePayment(request: ClosePaymentRequest): Promise<ClosePaymentResult> {
    const call = closeCall(request, this.config);
    const outcome = await this.execute(call);
    return this.observed(call, outcome.ok ? closeResultFromAnswer(outcome.answer) : outcome.unknown);
  }

  async refund(request: RefundRequest): Promise<RefundResult> {
    const prepared = refundCall(request, this.config);
    if (!prepared.ok) return prepared.refusal;
    const outcome = await this.execute(prepared.call);
    return this.observed(prepared.call, outcome.ok ? refundResultFromAnswer(outcome.answer, request) : outcome.unknown);
  }

  async queryRefund(request: QueryRefundRequest): Promise<RefundResult> {
    const call = refundQueryCall(request);
    const outcome = await this.execute(call);
    return this.observed(call, outcome.ok ? refundResultFromQuery(outcome.answer, request) : outcome.unknown);
  }

  async verifyNotification(notification: InboundNotification): Promise<NotificationVerification> {
    const verification = verifyWechatpayNotification(notification, this.notificationKeys, this.dependencies.clock.now());
    if (!verification.verified) {
      // The serial and timestamp identify the notification for an operator; the signature itself is never logged.
      const headers = { serial: notification.headers['wechatpay-serial'], timestamp: notification.headers['wechatpay-timestamp'] };
      this.logger.warn({ ...headers, reason: verification.reason }, `wechatpay notification not verified: ${verification.message}`);
    } else if (verification.event.facts.channelStatus === 'ABNORMAL') {
      const { outTradeNo } = verification.event.facts;
      this.logger.warn({ outTradeNo, notificationId: verification.event.notificationId }, 'wechatpay refund is ABNORMAL: it must be settled by hand on the merchant platform');
    }
    return verification;
  }

  acknowledgeNotification(outcome: 'accepted' | 'rejected'): NotificationAcknowledgement {
    return acknowledgements[outcome];
  }

  /** The trade bill (bill_type ALL) of a Beijing day, T+1: see ./bill.ts. */
  async downloadBill(request: BillRequest): Promise<BillResult> {
    return downloadWechatpayBill(request, {
      endpoint: (path) => this.client.chain(path) as unknown as WechatpayGetEndpoint,
      baseUrl: this.config.baseUrl,
      timeoutMs: this.config.timeoutMs,
      outcomeFromError,
      logger: this.logger,
    });
  }

  /**
   * The parameters the payer's WeChat client needs for a JSAPI payment, signed
   * with the merchant key over appId, timeStamp, nonceStr and package.
   */
  private jsapiParameters(prepayId: string): Record<string, string> {
    const unsigned = {
      appId: this.config.appId,
      timeStamp: String(unixSeconds(this.dependencies.clock.now())),
      nonceStr: randomBytes(16).toString('hex'),
      package: `prepay_id=${prepayId}`,
    };
    return { ...unsigned, signType: 'RSA', paySign: Rsa.sign(jsapiSignContent(unsigned), this.merchantPrivateKey) };
  }

  private async execute(call: WechatpayCall): Promise<ApiOutcome> {
    const endpoint = this.client.chain(call.path) as unknown as WechatpayEndpoint;
    const config = call.query ? { params: call.query } : {};
    try {
      const response = call.httpMethod === 'GET' ? await endpoint.get(config) : await endpoint.post(call.body, config);
      return { ok: true, answer: { httpStatus: response.status, body: response.data } };
    } catch (error) {
      return outcomeFromError(error);
    }
  }

  /** Logs each answer by its outcome (never keys, signatures or bodies) and passes it on. */
  private observed<Result extends { status: string }>(call: WechatpayCall, result: Result): Result {
    const details = { operation: call.operation, outTradeNo: call.outTradeNo, status: result.status };
    if (result.status === 'unknown') {
      const unknown = result as unknown as UnknownAnswer;
      const level = unknown.reason === 'unmapped_status' || unknown.reason === 'unverifiable' ? 'warn' : 'info';
      this.logger[level]({ ...details, reason: unknown.reason, channelCode: unknown.channelCode }, `wechatpay answer unknown: ${unknown.message}`);
    } else if (result.status === 'amount_mismatch') {
      this.logger.error(details, 'wechatpay answer reports a different amount than the order');
    } else if ((result as { facts?: { channelStatus?: string } }).facts?.channelStatus === 'ABNORMAL') {
      this.logger.warn(details, 'wechatpay refund is ABNORMAL: it must be settled by hand on the merchant platform');
    } else {
      this.logger.debug(details, 'wechatpay answer');
    }
    return result;
  }
}
