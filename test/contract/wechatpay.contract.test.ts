import { createSign, generateKeyPairSync, randomBytes } from 'node:crypto';
import { connectWechatpaySimulator } from '../../src/main/sandbox.js';
import { createWechatpaySimulator, type WechatpayFaultSetting, type WechatpaySimulator } from '../../src/simulators/index.js';
import { wechatpayRetryDelaysMs, type WechatpayFaultInput } from '../../src/simulators/wechatpay/index.js';
import { describeChannelContract, type ContractFault } from './channel-contract.js';
import { openPayerPageByLink } from '../helpers/payer-pages.js';

/**
 * WeChat Pay's pair: wechatpay-axios-plugin (answers verified with the
 * platform public key) against the WeChat Pay simulator. Native hands out a
 * code_url the payer opens, H5 a redirect, JSAPI signed parameters the payer's
 * WeChat client checks before it shows the order; refunds complete
 * asynchronously (the simulator completes them when told); faults are switched
 * per out_trade_no and aimed at an API operation.
 */

function wechatpayFault(fault: ContractFault): WechatpayFaultInput {
  switch (fault.kind) {
    case 'http_5xx':
      return { kind: 'http_error', operation: fault.operation, httpStatus: fault.httpStatus };
    case 'timeout':
      return { kind: 'timeout', operation: fault.operation, holdMs: fault.holdMs };
    case 'wrong_amount':
      // WeChat Pay's amounts are fen integers on the wire.
      return { kind: 'wrong_amount', amountFen: Number(fault.reported.amount), where: 'both' };
    case 'notification_duplicate':
    case 'notification_drop':
    case 'notification_delay':
      return fault;
  }
}

describeChannelContract<WechatpaySimulator>({
  channel: 'wechatpay',
  methods: [
    { method: 'wechat_native', action: 'qr_code' },
    { method: 'wechat_h5', action: 'redirect', request: { payerIp: '203.0.113.7' } },
    { method: 'wechat_jsapi', action: 'client_parameters', request: { payerChannelId: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o' } },
  ],
  startSimulator: async (options) => {
    const simulator = await createWechatpaySimulator(options);
    await simulator.listen({ host: '127.0.0.1', port: 0, deliveryLoop: false });
    return simulator;
  },
  connect: (context, actor, simulator, options) => connectWechatpaySimulator(context, actor, simulator, options),
  openPayerPage: async (simulator, action) => {
    switch (action.kind) {
      case 'qr_code':
        // The code_url is what a scan opens.
        return openPayerPageByLink(action.qrCode);
      case 'redirect':
        return openPayerPageByLink(action.url);
      case 'client_parameters':
        // What WeChat's client does with JSAPI parameters: it checks paySign, then shows the order.
        return openPayerPageByLink(`${simulator.baseUrl}/wechatpay/jsapi?${new URLSearchParams(action.parameters).toString()}`);
      case 'form':
        throw new Error('WeChat Pay hands the payer no form');
    }
  },
  unpaidClose: 'at_once',
  notificationRetryDelaysMs: wechatpayRetryDelaysMs,
  deliverNotifications: async (simulator) => {
    await simulator.deliverDueNotifications();
  },
  completeRefunds: async (simulator) => {
    // WeChat Pay answers a refund PROCESSING and completes it later; the simulator completes it now.
    await simulator.completeRefunds();
  },
  setFault: async (simulator, target, fault) => {
    const setting: WechatpayFaultSetting = { outTradeNo: target.outTradeNo, ...(fault.kind === 'timeout' ? { times: 1 } : {}), fault: wechatpayFault(fault) };
    await simulator.setFault(setting);
  },
  clearFaults: async (simulator, target) => {
    await simulator.clearFaults(target ? { outTradeNo: target.outTradeNo } : {});
  },
  forgeNotifications: async (genuine, { clock }) => {
    const altered = genuine.rawBody.replace('"TRANSACTION.SUCCESS"', '"REFUND.SUCCESS"');
    if (altered === genuine.rawBody) throw new Error('the genuine notification is not a TRANSACTION.SUCCESS');
    // Signed now, under the simulator's key id, by a key that is not WeChat Pay's.
    const stranger = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    const timestamp = String(Math.floor(clock.now().getTime() / 1000));
    const nonce = randomBytes(16).toString('hex');
    const signature = createSign('RSA-SHA256').update(`${timestamp}\n${nonce}\n${genuine.rawBody}\n`).sign(stranger, 'base64');
    const forgedHeaders = { ...genuine.headers, 'wechatpay-timestamp': timestamp, 'wechatpay-nonce': nonce, 'wechatpay-signature': signature };
    return {
      altered: { headers: genuine.headers, rawBody: altered, json: JSON.parse(altered) as unknown },
      signedByAnotherKey: { headers: forgedHeaders, rawBody: genuine.rawBody, json: genuine.json },
    };
  },
});
