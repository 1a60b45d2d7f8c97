/**
 * The Alipay simulator: Alipay's openapi gateway, payer pages, notifications
 * with Alipay's retry schedule and fault switches, state in `sim_alipay`.
 */
export { createAlipaySimulator, type AlipaySimulator, type AlipaySimulatorOptions, type RegisterAppInput } from './server.js';
export { faultSchema, faultSettingSchema, type ActiveFault, type AlipayFault, type AlipayFaultInput, type FaultSetting } from './faults.js';
export { alipayRetryDelaysMs, notificationAttemptsMax, type DeliveryReport } from './notifier.js';
export { simulatorSchema, simTradeStatuses, type SigningKey, type SimTrade, type SimTradeStatus } from './store.js';
