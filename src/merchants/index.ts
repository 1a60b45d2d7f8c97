export { registerMerchantRoutes } from './merchants.routes.js';
export {
  createMerchant,
  getMerchant,
  listMerchants,
  reviewMerchant,
  freezeMerchant,
  unfreezeMerchant,
  closeMerchant,
  merchantStatusOf,
  revealSettlementAccountNumber,
  bankAccountSealContext,
} from './merchants.service.js';
export type { CreateMerchantInput, MerchantTransition } from './merchants.service.js';
export { merchantViewSchema, merchantStatuses, settlementCycles, riskLevels, isBusinessLicenceNumber } from './merchants.schemas.js';
export type { MerchantView } from './merchants.schemas.js';
