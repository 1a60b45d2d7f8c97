/**
 * The WeChat Pay simulator: WeChat Pay API v3's order and refund endpoints,
 * payer pages, encrypted notifications with WeChat Pay's retry schedule,
 * asynchronous refunds and fault switches, state in `sim_wechatpay`.
 */
export {
  createWechatpaySimulator,
  type CompletionAndDeliveryReport,
  type RegisterMerchantInput,
  type WechatpaySimulator,
  type WechatpaySimulatorOptions,
} from './server.js';
export {
  apiOperations,
  faultSchema,
  faultSettingSchema,
  type ActiveFault,
  type ApiOperation,
  type FaultSetting,
  type WechatpayFault,
  type WechatpayFaultInput,
} from './faults.js';
export {
  defaultWechatpayBillSettings,
  tradeBillFile,
  tradeBillHeader,
  tradeBillSummaryHeader,
  type WechatpayBillLine,
  type WechatpayBillSettings,
} from './bills.js';
export { notificationAttemptsMax, wechatpayRetryDelaysMs, type DeliveryReport } from './notifier.js';
export type { PlatformKey } from './protocol.js';
export { simRefundStatuses, simTradeStates, simulatorSchema, type SimRefund, type SimTrade, type SimTradeState } from './store.js';
