import { generateKeyPairSync } from 'node:crypto';
import { connectAlipaySimulator } from '../../src/main/sandbox.js';
import { formatMinorAsDecimal } from '../../src/platform/money.js';
import { notificationSignContent, signRsa2 } from '../../src/simulators/alipay/protocol.js';
import { alipayRetryDelaysMs, createAlipaySimulator, type AlipayFaultInput, type AlipaySimulator } from '../../src/simulators/index.js';
import { describeChannelContract, type ContractFault, type ContractOperation } from './channel-contract.js';
import { openPayerPageByLink } from '../helpers/payer-pages.js';

/**
 * Alipay's pair: the official alipay-sdk (validateSign on) against the Alipay
 * simulator. A QR code's URL and a page-pay redirect both lead the payer to
 * the simulator's cashier; refunds are answered at once; faults are switched
 * per out_trade_no and aimed at an openapi method.
 */

const apiMethods: Record<ContractOperation, string> = { query: 'alipay.trade.query', refund: 'alipay.trade.refund' };

function alipayFault(fault: ContractFault): AlipayFaultInput {
  switch (fault.kind) {
    case 'http_5xx':
      return { kind: 'gateway_error', apiMethod: apiMethods[fault.operation], httpStatus: fault.httpStatus };
    case 'timeout':
      return { kind: 'gateway_timeout', apiMethod: apiMethods[fault.operation], holdMs: fault.holdMs };
    case 'wrong_amount':
      // Alipay's wire amount is yuan text; the conversion happens here as it does in the connector.
      return { kind: 'wrong_amount', totalAmount: formatMinorAsDecimal(fault.reported.amount, fault.reported.currency), where: 'both' };
    case 'notification_duplicate':
    case 'notification_drop':
    case 'notification_delay':
      return fault;
  }
}

describeChannelContract<AlipaySimulator>({
  channel: 'alipay',
  methods: [
    { method: 'alipay_qr', action: 'qr_code' },
    { method: 'alipay_page', action: 'redirect' },
  ],
  startSimulator: async (options) => {
    const simulator = await createAlipaySimulator(options);
    await simulator.listen({ host: '127.0.0.1', port: 0, deliveryLoop: false });
    return simulator;
  },
  connect: (context, actor, simulator, options) => connectAlipaySimulator(context, actor, simulator, options),
  openPayerPage: async (_simulator, action) => {
    // Scanning the QR code and following the page-pay URL both redirect to the cashier.
    if (action.kind === 'qr_code') return openPayerPageByLink(action.qrCode);
    if (action.kind === 'redirect') return openPayerPageByLink(action.url);
    throw new Error(`Alipay hands the payer no ${action.kind}`);
  },
  unpaidClose: 'at_once',
  notificationRetryDelaysMs: alipayRetryDelaysMs,
  deliverNotifications: async (simulator) => {
    await simulator.deliverDueNotifications();
  },
  completeRefunds: async () => {
    // Alipay answers a refund with its outcome; there is nothing to complete.
  },
  setFault: async (simulator, target, fault) => {
    await simulator.setFault({ outTradeNo: target.outTradeNo, ...(fault.kind === 'timeout' ? { times: 1 } : {}), fault: alipayFault(fault) });
  },
  clearFaults: async (simulator, target) => {
    await simulator.clearFaults(target ? { outTradeNo: target.outTradeNo } : {});
  },
  forgeNotifications: async (genuine) => {
    const fields = Object.fromEntries(new URLSearchParams(genuine.rawBody));
    const altered = { ...fields, total_amount: '0.01' };
    const stranger = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const resigned = { ...altered, sign: signRsa2(notificationSignContent(altered), stranger) };
    const asNotification = (form: Record<string, string>) => ({ headers: genuine.headers, rawBody: new URLSearchParams(form).toString(), form });
    return { altered: asNotification(altered), signedByAnotherKey: asNotification(resigned) };
  },
});
