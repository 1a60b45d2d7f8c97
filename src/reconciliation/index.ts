/**
 * Reconciliation (对账): the channels' bills (./bills, the parsers) and the
 * matching of them against Fen's records — batches, differences, the holding
 * pool, resolution, fund flow and internal checks, the daily job, the
 * operator API. Other modules reach it only through here.
 */
export { reconcileAccountDay, reconcileDay, accountsToReconcile, type RunOptions } from './reconciliation.service.js';
export { resolveDifference, resolveAutomatically } from './resolution.js';
export { batchReport, findBatch, findBatchFor, findDifference, listBatches, listDifferences, type BatchRow, type DifferenceRow } from './batches.repository.js';
export { registerReconciliationRoutes } from './reconciliation.routes.js';
export { reconciliationCron, reconciliationJobHandlers, reconcileRunTask, reconcileDispatchTask, dispatchDueBatches } from './reconciliation.jobs.js';
export { differencesCsv } from './csv.js';
export { reconLimits, lineDifferenceKinds, operatorResolutions, beijingDateOf, addDays, isBillDate, type BatchReport, type LineDifferenceKind, type OperatorResolution } from './recon.types.js';
