import { AlipayRequestError, AlipaySdk } from 'alipay-sdk';
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
import { downloadAlipayBill } from './bill.js';
import { assertUsableKeys, notificationFields, notificationSignatureValid, privateKeyTypeOf, useParsedKeys } from './signature.js';
import {
  alipayCurrency,
  closeCall,
  closeResultFromAnswer,
  createResultFromPrecreate,
  notificationEventFromForm,
  pagePayCall,
  paymentResultFromQuery,
  precreateCall,
  queryCall,
  refundCall,
  refundQueryCall,
  refundResultFromAnswer,
  refundResultFromQuery,
  type AlipayAnswer,
  type AlipayCall,
} from './transformers.js';

/** What one Alipay channel account needs; pointing at real Alipay is only a matter of these values. */
export interface AlipayAccountConfig {
  channelAccountId: string;
  appId: string;
  /** https://openapi.alipay.com/gateway.do, the sandbox's, or a simulator's `/gateway.do`. */
  gatewayUrl: string;
  appPrivateKeyPem: string;
  alipayPublicKeyPem: string;
  /** Fen's channel endpoint for this account: /channels/alipay/notify/<channel account>. */
  notifyUrl: string;
  returnUrl?: string;
  timeoutMs: number;
}

/** Alipay's exact replies: `success` stops its retries, anything else makes it try again. */
const acknowledgements = {
  accepted: { statusCode: 200, contentType: 'text/plain; charset=utf-8', body: 'success' },
  rejected: { statusCode: 200, contentType: 'text/plain; charset=utf-8', body: 'fail' },
} as const satisfies Record<'accepted' | 'rejected', NotificationAcknowledgement>;

type GatewayOutcome = { ok: true; answer: AlipayAnswer } | { ok: false; unknown: UnknownAnswer };

/**
 * The SDK throws for everything that is not a signed, well-formed answer. Each
 * of those becomes `unknown` — the request may or may not have taken effect.
 * Only the SDK's own markers are used here; its messages are not logged because
 * some of them quote the whole signature.
 */
export function unknownFromSdkError(error: unknown): UnknownAnswer {
  if (!(error instanceof AlipayRequestError)) {
    // The SDK throws a TypeError when an answer has no signature to verify.
    return { status: 'unknown', reason: 'unverifiable', message: `the answer could not be checked (${(error as Error)?.name ?? 'error'})` };
  }
  const causeName = error.cause instanceof Error ? error.cause.name : undefined;
  if (causeName === 'HttpClientRequestTimeoutError') return { status: 'unknown', reason: 'timeout', message: 'no answer within the timeout' };
  if (causeName !== undefined && error.responseDataRaw === undefined) {
    return { status: 'unknown', reason: 'network', message: `the request failed (${causeName})` };
  }
  const httpStatus = /status: (\d{3})/.exec(error.message)?.[1];
  if (httpStatus) return { status: 'unknown', reason: 'http_status', channelCode: `HTTP ${httpStatus}`, message: `Alipay answered HTTP ${httpStatus}` };
  if (error.message.includes('验签')) return { status: 'unknown', reason: 'unverifiable', message: 'the answer signature did not verify' };
  return { status: 'unknown', reason: 'unparsable', message: 'the answer was not a gateway response' };
}

export class AlipayConnector implements ChannelConnector {
  readonly channel = 'alipay' as const;
  readonly channelAccountId: string;
  readonly methods: readonly PaymentMethod[] = channelMethods.alipay;
  private readonly sdk: AlipaySdk;
  private readonly logger: Logger;

  constructor(
    private readonly config: AlipayAccountConfig,
    private readonly dependencies: ConnectorDependencies,
  ) {
    assertUsableKeys(config);
    this.channelAccountId = config.channelAccountId;
    this.logger = dependencies.logger.child({ channel: 'alipay', channelAccountId: config.channelAccountId });
    this.sdk = new AlipaySdk({
      appId: config.appId,
      privateKey: config.appPrivateKeyPem,
      keyType: privateKeyTypeOf(config.appPrivateKeyPem),
      alipayPublicKey: config.alipayPublicKeyPem,
      gateway: config.gatewayUrl,
      endpoint: new URL(config.gatewayUrl).origin,
      signType: 'RSA2',
      timeout: config.timeoutMs,
      // Keep Alipay's snake_case keys: the transformers read the wire names.
      camelcase: false,
    });
    useParsedKeys(this.sdk);
  }

  async createPayment(request: CreatePaymentRequest): Promise<CreatePaymentResult> {
    if (request.amount.currency !== alipayCurrency) {
      return { status: 'failed', reason: 'rejected', channelCode: 'unsupported_currency', message: `Alipay takes CNY, not ${request.amount.currency}` };
    }
    switch (request.method) {
      case 'alipay_qr': {
        const call = precreateCall(request, this.config, this.dependencies.clock.now());
        const outcome = await this.execute(call);
        return this.observed(call, outcome.ok ? createResultFromPrecreate(outcome.answer, request) : outcome.unknown);
      }
      case 'alipay_page':
        return { status: 'pending', action: { kind: 'redirect', url: this.pagePayUrl(pagePayCall(request, this.config)) } };
      default:
        return { status: 'failed', reason: 'rejected', channelCode: 'unsupported_method', message: `Alipay does not offer ${request.method}` };
    }
  }

  async queryPayment(request: QueryPaymentRequest): Promise<PaymentStatusResult> {
    const call = queryCall(request);
    const outcome = await this.execute(call);
    return this.observed(call, outcome.ok ? paymentResultFromQuery(outcome.answer, request) : outcome.unknown);
  }

  async closePayment(request: ClosePaymentRequest): Promise<ClosePaymentResult> {
    const call = closeCall(request);
    const outcome = await this.execute(call);
    return this.observed(call, outcome.ok ? closeResultFromAnswer(outcome.answer, request) : outcome.unknown);
  }

  async refund(request: RefundRequest): Promise<RefundResult> {
    const call = refundCall(request);
    const outcome = await this.execute(call);
    return this.observed(call, outcome.ok ? refundResultFromAnswer(outcome.answer, request) : outcome.unknown);
  }

  async queryRefund(request: QueryRefundRequest): Promise<RefundResult> {
    const call = refundQueryCall(request);
    const outcome = await this.execute(call);
    return this.observed(call, outcome.ok ? refundResultFromQuery(outcome.answer, request) : outcome.unknown);
  }

  async verifyNotification(notification: InboundNotification): Promise<NotificationVerification> {
    const fields = notificationFields(notification);
    if (!notificationSignatureValid(this.sdk, fields)) {
      this.logger.warn({ outTradeNo: fields.out_trade_no, notifyId: fields.notify_id }, 'alipay notification failed signature verification');
      return { verified: false, reason: 'invalid_signature', message: 'the notification is not signed by this account’s Alipay key' };
    }
    // Genuine, but for another app: Fen must not act on another account's trade.
    if (fields.app_id !== this.config.appId) {
      return { verified: false, reason: 'foreign_account', message: `the notification is for app ${fields.app_id ?? '(none)'}` };
    }
    const parsed = notificationEventFromForm(fields);
    if (!parsed.ok) return { verified: false, reason: parsed.reason, message: parsed.message };
    return { verified: true, event: parsed.event };
  }

  acknowledgeNotification(outcome: 'accepted' | 'rejected'): NotificationAcknowledgement {
    return acknowledgements[outcome];
  }

  /** The trade bill (业务明细) of a Beijing day, T+1: see ./bill.ts. */
  async downloadBill(request: BillRequest): Promise<BillResult> {
    return downloadAlipayBill(request, {
      exec: (apiMethod, bizContent) => this.sdk.exec(apiMethod, { bizContent }, { validateSign: true }),
      unknownFromError: unknownFromSdkError,
      logger: this.logger,
    });
  }

  /** The signed GET URL for page pay; the SDK builds it locally, so this cannot fail on the network. */
  private pagePayUrl(call: AlipayCall): string {
    return this.sdk.pageExecute(call.apiMethod, 'GET', {
      bizContent: call.bizContent,
      ...(call.notifyUrl ? { notifyUrl: call.notifyUrl } : {}),
      ...(call.returnUrl ? { returnUrl: call.returnUrl } : {}),
    });
  }

  private async execute(call: AlipayCall): Promise<GatewayOutcome> {
    try {
      const answer = await this.sdk.exec(
        call.apiMethod,
        { bizContent: call.bizContent, ...(call.notifyUrl ? { notify_url: call.notifyUrl } : {}) },
        { validateSign: true },
      );
      return { ok: true, answer };
    } catch (error) {
      return { ok: false, unknown: unknownFromSdkError(error) };
    }
  }

  /** Logs each answer by its outcome (never keys, signatures or raw bodies) and passes it on. */
  private observed<Result extends { status: string }>(call: AlipayCall, result: Result): Result {
    const details = { apiMethod: call.apiMethod, outTradeNo: call.bizContent.out_trade_no, status: result.status };
    if (result.status === 'unknown') {
      const unknown = result as unknown as UnknownAnswer;
      // A code nobody mapped, or an answer that does not verify, needs a person; the rest is weather.
      const level = unknown.reason === 'unmapped_status' || unknown.reason === 'unverifiable' ? 'warn' : 'info';
      this.logger[level]({ ...details, reason: unknown.reason, channelCode: unknown.channelCode }, `alipay answer unknown: ${unknown.message}`);
    } else if (result.status === 'amount_mismatch') {
      this.logger.error(details, 'alipay answer reports a different amount than the order');
    } else {
      this.logger.debug(details, 'alipay answer');
    }
    return result;
  }
}
