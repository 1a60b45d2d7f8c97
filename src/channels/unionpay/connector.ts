import { createPrivateKey, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
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
import { downloadUnionpayBill } from './bill.js';
import { certIdOf, defaultUnionpaySignerName, signatureOf, trustFrom, verifyUnionpayMessage, type UnionpayTrust } from './signature.js';
import {
  closeResultFromQuery,
  consumeCall,
  frontFormHtml,
  notificationEventFromForm,
  parseAnswerText,
  paymentResultFromQuery,
  queryCall,
  refundCall,
  refundResultFromAnswer,
  refundResultFromQuery,
  type CallOrRefusal,
  type UnionpayAnswer,
  type UnionpayCall,
  type UnionpayEndpoint,
} from './transformers.js';

/** What one UnionPay merchant account needs; pointing at real UnionPay is only a matter of these values. */
export interface UnionpayAccountConfig {
  channelAccountId: string;
  /** UnionPay's 15-digit merchant number. */
  merId: string;
  /** The merchant's signing certificate (PEM) as UnionPay issued it (exported from its PFX)… */
  signCertPem: string;
  /** …and its private key (PEM, PKCS#8 or PKCS#1). */
  signPrivateKeyPem: string;
  /**
   * The decimal serial of signCertPem. Derived from the certificate; when
   * given, it must agree (a mismatch is a configuration error, found at start).
   */
  certId?: string;
  /** UnionPay's root and middle certificates: a signPubKeyCert must chain to them. */
  rootCertPem: string;
  middleCertPem: string;
  /** The organisation a signPubKeyCert's CN must name; default 中国银联股份有限公司. */
  signerName?: string;
  /** https://gateway.95516.com/gateway/api/frontTransReq.do, the test environment's, or a simulator's. */
  frontTransUrl: string;
  backTransUrl: string;
  singleQueryUrl: string;
  /**
   * The file transfer, for reconciliation files: https://filedownload.95516.com/
   * at UnionPay (https://filedownload.test.95516.com/ in its test environment).
   * When absent, backTransUrl with backTransReq.do replaced by
   * fileTransRequest.do, which is where the simulator serves it.
   */
  fileTransUrl?: string;
  /** backUrl: Fen's channel endpoint for this account, /channels/unionpay/notify/<channel account>. */
  notifyUrl: string;
  /** Where the payer's browser goes after paying, unless the payment names its own return URL. */
  frontUrl: string;
  timeoutMs: number;
}

/** UnionPay stops re-sending a back notification once it gets HTTP 200; anything else is retried. */
const acknowledgements = {
  accepted: { statusCode: 200, contentType: 'text/plain; charset=utf-8', body: 'ok' },
  rejected: { statusCode: 500, contentType: 'text/plain; charset=utf-8', body: 'fail' },
} as const satisfies Record<'accepted' | 'rejected', NotificationAcknowledgement>;

type GatewayOutcome = { ok: true; answer: UnionpayAnswer } | { ok: false; unknown: UnknownAnswer };

/** The payment form: where it posts, and the signed fields. */
export type PaymentForm = { ok: true; actionUrl: string; fields: Record<string, string> } | { ok: false; channelCode: string; message: string };

function unknownFromFetchError(error: unknown): UnknownAnswer {
  const name = (error as Error)?.name ?? 'Error';
  if (name === 'TimeoutError' || name === 'AbortError') return { status: 'unknown', reason: 'timeout', message: 'no answer within the timeout' };
  return { status: 'unknown', reason: 'network', message: `the request failed (${name})` };
}

/** The signing key, checked against the certificate, and the certId that names them. */
function loadSigner(config: UnionpayAccountConfig): { privateKey: KeyObject; certId: string } {
  const certificate = new X509Certificate(config.signCertPem);
  const privateKey = createPrivateKey(config.signPrivateKeyPem);
  const derived = certIdOf(certificate);
  const publicDer = (key: KeyObject) => key.export({ type: 'spki', format: 'der' }).toString('base64');
  if (publicDer(createPublicKey(privateKey)) !== publicDer(certificate.publicKey)) {
    throw new Error(`UnionPay account ${config.channelAccountId}: the signing key does not belong to the signing certificate`);
  }
  if (config.certId !== undefined && config.certId !== derived) {
    throw new Error(`UnionPay account ${config.channelAccountId}: certId ${config.certId} is not the signing certificate's serial ${derived}`);
  }
  return { privateKey, certId: derived };
}

/** The configured file-transfer URL, or the one beside backTransUrl (see UnionpayAccountConfig.fileTransUrl). */
export function fileTransUrlOf(config: Pick<UnionpayAccountConfig, 'fileTransUrl' | 'backTransUrl'>): string {
  if (config.fileTransUrl) return config.fileTransUrl;
  const url = new URL(config.backTransUrl);
  url.pathname = url.pathname.endsWith('/backTransReq.do') ? url.pathname.replace(/backTransReq\.do$/, 'fileTransRequest.do') : '/gateway/api/fileTransRequest.do';
  return url.toString();
}

export class UnionpayConnector implements ChannelConnector {
  readonly channel = 'unionpay' as const;
  readonly channelAccountId: string;
  readonly methods: readonly PaymentMethod[] = channelMethods.unionpay;
  /** The merchant certificate's serial in decimal, sent as certId. */
  readonly certId: string;
  /** Where the payment form posts; the cashier may render its own button to it. */
  readonly frontTransUrl: string;
  private readonly privateKey: KeyObject;
  private readonly trust: UnionpayTrust;
  private readonly logger: Logger;

  constructor(
    private readonly config: UnionpayAccountConfig,
    private readonly dependencies: ConnectorDependencies,
  ) {
    this.channelAccountId = config.channelAccountId;
    this.frontTransUrl = config.frontTransUrl;
    this.logger = dependencies.logger.child({ channel: 'unionpay', channelAccountId: config.channelAccountId });
    const signer = loadSigner(config);
    this.privateKey = signer.privateKey;
    this.certId = signer.certId;
    this.trust = trustFrom(config.rootCertPem, config.middleCertPem, config.signerName ?? defaultUnionpaySignerName);
  }

  /** The signed consumption form for a payment; built locally, so it cannot fail on the network. */
  paymentForm(request: CreatePaymentRequest): PaymentForm {
    const built = consumeCall(request, this.config);
    if (!built.ok) return built;
    return { ok: true, actionUrl: this.config.frontTransUrl, fields: this.signed(built.call) };
  }

  async createPayment(request: CreatePaymentRequest): Promise<CreatePaymentResult> {
    if (request.method !== 'unionpay_web') {
      return { status: 'failed', reason: 'rejected', channelCode: 'unsupported_method', message: `UnionPay does not offer ${request.method}` };
    }
    const form = this.paymentForm(request);
    if (!form.ok) return { status: 'failed', reason: 'rejected', channelCode: form.channelCode, message: form.message };
    return { status: 'pending', action: { kind: 'form', actionUrl: form.actionUrl, fields: form.fields, html: frontFormHtml(form.actionUrl, form.fields) } };
  }

  async queryPayment(request: QueryPaymentRequest): Promise<PaymentStatusResult> {
    const built = queryCall(request.outTradeNo, this.config.merId);
    if (!built.ok) return this.refusedLocally(built);
    const outcome = await this.send(built.call);
    return this.observed(built.call, outcome.ok ? paymentResultFromQuery(outcome.answer, request, this.config.merId) : outcome.unknown);
  }

  async closePayment(request: ClosePaymentRequest): Promise<ClosePaymentResult> {
    const built = queryCall(request.outTradeNo, this.config.merId);
    if (!built.ok) return this.refusedLocally(built);
    const outcome = await this.send(built.call);
    return this.observed(built.call, outcome.ok ? closeResultFromQuery(outcome.answer, request, this.config.merId) : outcome.unknown);
  }

  async refund(request: RefundRequest): Promise<RefundResult> {
    const origQryId = request.channelTradeNo ?? (await this.paidQueryId(request));
    if (typeof origQryId !== 'string') return origQryId;
    const built = refundCall(request, origQryId, this.config);
    if (!built.ok) return { status: 'failed', reason: 'rejected', channelCode: built.channelCode, message: built.message };
    const outcome = await this.send(built.call);
    return this.observed(built.call, outcome.ok ? refundResultFromAnswer(outcome.answer, request, this.config.merId) : outcome.unknown);
  }

  async queryRefund(request: QueryRefundRequest): Promise<RefundResult> {
    const built = queryCall(request.outRefundNo, this.config.merId);
    if (!built.ok) return this.refusedLocally(built);
    const outcome = await this.send(built.call);
    return this.observed(built.call, outcome.ok ? refundResultFromQuery(outcome.answer, request, this.config.merId) : outcome.unknown);
  }

  async verifyNotification(notification: InboundNotification): Promise<NotificationVerification> {
    const fields = notification.form ? { ...notification.form } : Object.fromEntries(new URLSearchParams(notification.rawBody));
    const check = verifyUnionpayMessage(fields, this.trust, this.dependencies.clock.now());
    if (!check.ok) {
      this.logger.warn({ orderId: fields.orderId, queryId: fields.queryId, problem: check.problem }, 'unionpay notification failed verification');
      return { verified: false, reason: 'invalid_signature', message: check.problem };
    }
    // Genuine, but for another merchant: Fen must not act on another account's order.
    if (fields.merId !== this.config.merId) {
      return { verified: false, reason: 'foreign_account', message: `the notification is for merchant ${fields.merId ?? '(none)'}` };
    }
    const parsed = notificationEventFromForm(fields);
    if (!parsed.ok) return { verified: false, reason: parsed.reason, message: parsed.message };
    return { verified: true, event: parsed.event };
  }

  acknowledgeNotification(outcome: 'accepted' | 'rejected'): NotificationAcknowledgement {
    return acknowledgements[outcome];
  }

  /** The ZM reconciliation file of a settlement date (a Beijing day), T+1: see ./bill.ts. */
  async downloadBill(request: BillRequest): Promise<BillResult> {
    return downloadUnionpayBill(request, {
      merId: this.config.merId,
      fileTransUrl: fileTransUrlOf(this.config),
      sign: (fields) => this.signedFields(fields),
      verify: (answer) => verifyUnionpayMessage(answer, this.trust, this.dependencies.clock.now()),
      now: () => this.dependencies.clock.now(),
      logger: this.logger,
    });
  }

  /**
   * A refund names the payment by its queryId. Fen has it once the payment is
   * known to be paid; when it does not, a query finds it (a payment reported
   * with another amount is still a paid one, and exactly the kind that gets
   * refunded).
   */
  private async paidQueryId(request: RefundRequest): Promise<string | RefundResult> {
    const queried = await this.queryPayment({ outTradeNo: request.outTradeNo, expected: request.paymentAmount });
    if (queried.status === 'unknown') return queried;
    if ((queried.status === 'succeeded' || queried.status === 'amount_mismatch') && queried.facts.channelTradeNo) return queried.facts.channelTradeNo;
    return { status: 'failed', reason: 'rejected', channelCode: 'payment_not_paid', message: `UnionPay does not report payment ${request.outTradeNo} as paid (${queried.status})` };
  }

  /** A number Fen cannot send to UnionPay was never sent there: nothing can be known about it. */
  private refusedLocally(refusal: Extract<CallOrRefusal, { ok: false }>): UnknownAnswer {
    return { status: 'unknown', reason: 'unparsable', channelCode: refusal.channelCode, message: refusal.message };
  }

  private signed(call: UnionpayCall): Record<string, string> {
    return this.signedFields(call.fields);
  }

  private signedFields(unsigned: Record<string, string>): Record<string, string> {
    const fields = { ...unsigned, certId: this.certId };
    return { ...fields, signature: signatureOf(fields, this.privateKey) };
  }

  private urlOf(endpoint: UnionpayEndpoint): string {
    return { frontTransReq: this.config.frontTransUrl, backTransReq: this.config.backTransUrl, queryTrans: this.config.singleQueryUrl }[endpoint];
  }

  /** Posts a signed request and returns the answer only when it verifies; everything else is unknown. */
  private async send(call: UnionpayCall): Promise<GatewayOutcome> {
    let status: number;
    let body: string;
    try {
      const response = await fetch(this.urlOf(call.endpoint), {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded; charset=UTF-8' },
        body: new URLSearchParams(this.signed(call)).toString(),
        signal: AbortSignal.timeout(this.config.timeoutMs),
      });
      status = response.status;
      body = await response.text();
    } catch (error) {
      return { ok: false, unknown: unknownFromFetchError(error) };
    }
    if (status !== 200) return { ok: false, unknown: { status: 'unknown', reason: 'http_status', channelCode: `HTTP ${status}`, message: `UnionPay answered HTTP ${status}` } };
    const answer = parseAnswerText(body.trim());
    if (answer.respCode === undefined) return { ok: false, unknown: { status: 'unknown', reason: 'unparsable', message: 'the answer was not a UnionPay form' } };
    const check = verifyUnionpayMessage(answer, this.trust, this.dependencies.clock.now());
    if (!check.ok) return { ok: false, unknown: { status: 'unknown', reason: 'unverifiable', channelCode: answer.respCode, message: check.problem } };
    return { ok: true, answer };
  }

  /** Logs each answer by its outcome (never keys, signatures, certificates or raw bodies) and passes it on. */
  private observed<Result extends { status: string }>(call: UnionpayCall, result: Result): Result {
    const details = { endpoint: call.endpoint, txnType: call.fields.txnType, orderId: call.fields.orderId, status: result.status };
    if (result.status === 'unknown') {
      const unknown = result as unknown as UnknownAnswer;
      const level = unknown.reason === 'unmapped_status' || unknown.reason === 'unverifiable' ? 'warn' : 'info';
      this.logger[level]({ ...details, reason: unknown.reason, channelCode: unknown.channelCode }, `unionpay answer unknown: ${unknown.message}`);
    } else if (result.status === 'amount_mismatch') {
      this.logger.error(details, 'unionpay answer reports a different amount than the order');
    } else {
      this.logger.debug(details, 'unionpay answer');
    }
    return result;
  }
}
