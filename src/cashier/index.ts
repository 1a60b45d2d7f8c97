/**
 * The hosted cashier (收银台): the page a payer opens at `/pay/<payment>`.
 * Other modules reach the cashier only through this file.
 */
export { registerCashierRoutes, isSameOriginForm } from './cashier.routes.js';
export { renderCashierPage, renderMessagePage, contentSecurityPolicy, formatAmount, formatRemaining, qrCodeSvg } from './cashier.page.js';
export type { CashierView, CashierState, PayerStep, FormField } from './cashier.page.js';
export { cashierStatusSchema } from './cashier.schemas.js';
export type { CashierStatus } from './cashier.schemas.js';
export { languages, cashierMethods, chooseLanguage, languageFromAcceptLanguage } from './i18n.js';
export type { Language, CashierMethod } from './i18n.js';
