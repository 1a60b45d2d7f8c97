/**
 * Operator roles and what each may do. Every /admin/v1 route names exactly one
 * permission in its config; a role either has it or gets 403.
 */
export const permissions = [
  'merchants.read',
  'merchants.write',
  'merchants.review',
  'merchants.freeze',
  'apps.read',
  'apps.write',
  'apps.secrets',
  'operators.read',
  'operators.write',
  'audit.read',
  'ledger.read',
  'payments.read',
  'payments.write',
  'channels.read',
  'channels.write',
  'reconciliation.read',
  'reconciliation.resolve',
  'settlement.read',
  'settlement.run',
  'risk.read',
  'risk.write',
] as const;

export type Permission = (typeof permissions)[number];

export const operatorRoles = ['admin', 'operations', 'finance', 'risk', 'auditor'] as const;
export type OperatorRole = (typeof operatorRoles)[number];

const readAll = permissions.filter((permission) => permission.endsWith('.read'));

export const rolePermissions: Record<OperatorRole, readonly Permission[]> = {
  admin: permissions,
  operations: [
    'merchants.read',
    'merchants.write',
    'merchants.review',
    'apps.read',
    'apps.write',
    'apps.secrets',
    'payments.read',
    'payments.write',
    'channels.read',
    'channels.write',
  ],
  finance: ['merchants.read', 'apps.read', 'ledger.read', 'payments.read', 'reconciliation.read', 'reconciliation.resolve', 'settlement.read', 'settlement.run'],
  risk: ['merchants.read', 'merchants.freeze', 'apps.read', 'payments.read', 'risk.read', 'risk.write'],
  // The auditor sees everything and changes nothing.
  auditor: readAll,
};

export function isPermission(value: string): value is Permission {
  return (permissions as readonly string[]).includes(value);
}

export function rolesGrant(roles: readonly string[], permission: Permission): boolean {
  return roles.some((role) => (rolePermissions as Record<string, readonly Permission[] | undefined>)[role]?.includes(permission) ?? false);
}
