/** Who made a change, and from where: recorded with every audited change. */
export interface Actor {
  type: 'operator' | 'merchant_user' | 'app' | 'system';
  id: string | null;
  roles: string[];
  ip: string | null;
  /** Set for merchant users and apps: the merchant they act for. */
  merchantId: string | null;
}

export const systemActor: Actor = { type: 'system', id: null, roles: [], ip: null, merchantId: null };
