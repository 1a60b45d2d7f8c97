/**
 * Servers that speak the payment channels' real protocols (DESIGN.md §5), for
 * development, demos and tests; `fen sim` runs them as their own process.
 */
export * from './alipay/index.js';
export {
  createWechatpaySimulator,
  type WechatpaySimulator,
  type WechatpaySimulatorOptions,
  type RegisterMerchantInput as RegisterWechatpayMerchantInput,
  type FaultSetting as WechatpayFaultSetting,
} from './wechatpay/index.js';
export {
  createUnionpaySimulator,
  type UnionpaySimulator,
  type UnionpaySimulatorOptions,
  type FaultSetting as UnionpayFaultSetting,
} from './unionpay/index.js';
