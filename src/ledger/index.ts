/**
 * The ledger: double-entry books. Money moves only through postEntry,
 * postEntries or postTransfer; other modules reach the ledger only through
 * this file.
 */
export {
  accountCodes,
  accountSpecs,
  ensureAccount,
  ensureMerchantAccounts,
  ensurePlatformAccounts,
  isDebitNormal,
  normalBalance,
} from './accounts.js';
export type { AccountSpec, LedgerAccount, MerchantAccounts, PlatformAccounts } from './accounts.js';
export { postEntries, postEntry, postTransfer, postingAmountMaxMinor, postingsHash, transferPostings, validatePostings } from './ledger.service.js';
export type { TransferInput } from './ledger.service.js';
export type { EntryInput, PostEntryFailure, PostEntryResult, PostedEntry, PostingInput } from './ledger.types.js';
export { getAccountBalance, getBalanceByCode, listAccounts, listEntries } from './ledger.repository.js';
export type { AccountBalance, AccountQuery, EntryQuery, EntryView, Page, PostingView } from './ledger.repository.js';
export { checkLedger, checkProblemsPerKindMax } from './ledger.check.js';
export type { LedgerCheck, LedgerCheckStats, LedgerProblem, LedgerProblemCode } from './ledger.check.js';
export { registerLedgerRoutes } from './ledger.routes.js';
