import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { orderIdFor, signatureOf } from '../../src/channels/unionpay/index.js';
import { connectUnionpaySimulator } from '../../src/main/sandbox.js';
import { createUnionpaySimulator, type UnionpayFaultSetting, type UnionpaySimulator } from '../../src/simulators/index.js';
import { unionpayRetryDelaysMs, type UnionpayFaultInput } from '../../src/simulators/unionpay/index.js';
import { describeChannelContract, type ContractFault, type ContractOperation, type FaultTarget } from './channel-contract.js';
import { openPayerPageByForm } from '../helpers/payer-pages.js';

/**
 * UnionPay's pair: the node:crypto ACP 5.1.0 connector against the UnionPay
 * simulator. The payer's browser posts the signed consumption form to the
 * gateway and lands on the payer page; an order still waiting for the payer
 * cannot be closed (it ends when the payer cancels or at payTimeout); a refund
 * is accepted at once and completed by the time it is queried; faults are
 * switched per UnionPay orderId — the payment's for payment operations, the
 * refund's own for a refund — and aimed at a gateway endpoint.
 */

const certificates = path.join(import.meta.dirname, '../fixtures/unionpay/certificates');
const fixturePem = (name: string) => readFileSync(path.join(certificates, `${name}.pem`), 'utf8');

const endpoints: Record<ContractOperation, 'queryTrans' | 'backTransReq'> = { query: 'queryTrans', refund: 'backTransReq' };

function unionpayFault(fault: ContractFault): UnionpayFaultInput {
  switch (fault.kind) {
    case 'http_5xx':
      return { kind: 'gateway_error', endpoint: endpoints[fault.operation], httpStatus: fault.httpStatus };
    case 'timeout':
      return { kind: 'gateway_timeout', endpoint: endpoints[fault.operation], holdMs: fault.holdMs };
    case 'wrong_amount':
      // UnionPay's txnAmt is fen on the wire.
      return { kind: 'wrong_amount', txnAmt: fault.reported.amount.toString(), where: 'both' };
    case 'notification_duplicate':
    case 'notification_drop':
    case 'notification_delay':
      return fault;
  }
}

/** The orderId a fault is keyed by: a refund operation's own, otherwise the payment's. */
function faultOrderId(target: FaultTarget, fault: ContractFault): string {
  const number = fault.kind === 'timeout' || fault.kind === 'http_5xx' ? (fault.operation === 'refund' ? target.outRefundNo : target.outTradeNo) : target.outTradeNo;
  const orderId = number === undefined ? undefined : orderIdFor(number);
  if (!orderId) throw new Error(`no UnionPay orderId for the fault's target ${JSON.stringify(target)}`);
  return orderId;
}

describeChannelContract<UnionpaySimulator>({
  channel: 'unionpay',
  methods: [{ method: 'unionpay_web', action: 'form' }],
  startSimulator: async (options) => {
    const simulator = await createUnionpaySimulator(options);
    await simulator.listen({ host: '127.0.0.1', port: 0, deliveryLoop: false });
    return simulator;
  },
  connect: (context, actor, simulator, options) => connectUnionpaySimulator(context, actor, simulator, options),
  openPayerPage: async (_simulator, action) => {
    if (action.kind !== 'form') throw new Error(`UnionPay hands the payer no ${action.kind}`);
    return openPayerPageByForm(action.actionUrl, action.fields);
  },
  unpaidClose: 'after_payer_cancels',
  notificationRetryDelaysMs: unionpayRetryDelaysMs,
  deliverNotifications: async (simulator) => {
    await simulator.deliverDueNotifications();
  },
  completeRefunds: async () => {
    // The simulator completes an accepted refund at once; its result comes with a query or the back notification.
  },
  setFault: async (simulator, target, fault) => {
    const setting: UnionpayFaultSetting = { orderId: faultOrderId(target, fault), ...(fault.kind === 'timeout' ? { times: 1 } : {}), fault: unionpayFault(fault) };
    await simulator.setFault(setting);
  },
  clearFaults: async (simulator, target) => {
    if (!target) {
      await simulator.clearFaults();
      return;
    }
    for (const number of [target.outTradeNo, target.outRefundNo]) {
      const orderId = number === undefined ? undefined : orderIdFor(number);
      if (orderId) await simulator.clearFaults({ orderId });
    }
  },
  forgeNotifications: async (genuine) => {
    const fields = genuine.form ?? Object.fromEntries(new URLSearchParams(genuine.rawBody));
    const altered = { ...fields, txnAmt: '1' };
    // A forger with a CA of their own, whose signing certificate carries UnionPay's very name.
    const forged: Record<string, string> = { ...fields, signPubKeyCert: fixturePem('other-signer') };
    forged.signature = signatureOf(forged, createPrivateKey(fixturePem('other-signer-key')));
    const asNotification = (form: Record<string, string>) => ({ headers: genuine.headers, rawBody: new URLSearchParams(form).toString(), form });
    return { altered: asNotification(altered), signedUnderAnotherAuthority: asNotification(forged) };
  },
});
