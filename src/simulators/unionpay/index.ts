/**
 * The UnionPay simulator: UnionPay's ACP 5.1.0 online gateway
 * (frontTransReq.do, backTransReq.do, queryTrans.do) with its own test CA,
 * payer pages, signed back notifications with retries and fault switches,
 * state in `sim_unionpay`.
 */
export {
  createUnionpaySimulator,
  type IssuedMerchantCertificate,
  type RegisterMerchantInput,
  type UnionpaySimulator,
  type UnionpaySimulatorEndpoints,
  type UnionpaySimulatorOptions,
} from './server.js';
export { createAuthority, defaultSignerName, issueMerchantCertificate, type UnionpayAuthority } from './authority.js';
export { issueCertificate, issueRoot, newRsaKeyPair, privateKeyPem, type CertificateOrder, type DistinguishedName, type KeyPair } from './certificates.js';
export { faultSchema, faultSettingSchema, simEndpoints, type ActiveFault, type FaultSetting, type UnionpayFault, type UnionpayFaultInput } from './faults.js';
export {
  defaultUnionpayBillSettings,
  settlementArchive,
  settlementDateOf,
  zmFileNames,
  zmLine,
  type UnionpayBillLine,
  type UnionpayBillSettings,
} from './bills.js';
export { notificationAttemptsMax, unionpayRetryDelaysMs, type DeliveryReport } from './notifier.js';
export { simulatorSchema, simTransactionStatuses, type SimTransaction, type SimTransactionStatus } from './store.js';
