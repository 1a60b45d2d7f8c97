export { appendAudit, verifyAuditChain, listAudit, auditRecordHash, genesisHash } from './audit.service.js';
export type { AuditInput, AuditVerification, AuditProblem } from './audit.service.js';
export { registerAuditRoutes } from './audit.routes.js';
