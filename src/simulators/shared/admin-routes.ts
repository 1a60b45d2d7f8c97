import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';

/**
 * The parts of the `/__sim/*` admin API that every simulator has in common:
 * the optional admin token, the fault switches, a delivery pass on demand,
 * and the health check. Each channel registers its own routes beside these.
 */

/** Compares in constant time, so the token cannot be guessed a character at a time from response times. */
function tokenMatches(expected: string, given: unknown): boolean {
  if (typeof given !== 'string' || given.length !== expected.length) return false;
  return timingSafeEqual(Buffer.from(given), Buffer.from(expected));
}

/** When a token is configured, every `/__sim/` request must carry it in `x-sim-admin-token`; the channel's own API stays open. */
export function requireAdminToken(app: FastifyInstance, adminToken: string | undefined): void {
  app.addHook('onRequest', async (request, reply) => {
    if (!request.url.startsWith('/__sim/') || adminToken === undefined) return;
    if (!tokenMatches(adminToken, request.headers['x-sim-admin-token'])) return reply.code(401).send({ error: 'admin token required' });
  });
}

export function badRequest(reply: FastifyReply, error: z.ZodError): FastifyReply {
  return reply.code(400).send({ error: 'invalid request', issues: error.issues });
}

/** Clears one switch by id, the switches of one order (named by the channel's key), or all. */
export type ClearFaultsFilter<Key extends string> = { id?: number } & { [name in Key]?: string };

/** What the shared routes call on the simulator; each factory's public object has these methods. */
export interface AdminSimulator<Setting, Key extends string> {
  listFaults(): Promise<unknown[]>;
  setFault(setting: Setting): Promise<unknown>;
  clearFaults(filter?: ClearFaultsFilter<Key>): Promise<number>;
  deliverDueNotifications(): Promise<unknown>;
}

export interface SharedAdminRoutes<Setting, Key extends string> {
  /** The channel's fault setting schema. */
  settingSchema: z.ZodType<Setting>;
  /** The query parameter of DELETE /__sim/faults that clears one order's switches: the channel's name for its order number. */
  orderKey: Key;
  /** The request body as the channel's admin API reads it (a parsed form or JSON, or JSON text). */
  body: (request: FastifyRequest) => unknown;
  /** Late-bound, because the simulator object is built after the server. */
  simulator: () => AdminSimulator<Setting, Key>;
}

export function registerSharedAdminRoutes<Setting, Key extends string>(app: FastifyInstance, routes: SharedAdminRoutes<Setting, Key>): void {
  const { settingSchema, orderKey, body, simulator } = routes;
  app.get('/__sim/faults', async () => ({ faults: await simulator().listFaults() }));
  app.post('/__sim/faults', async (request, reply) => {
    const parsed = settingSchema.safeParse(body(request));
    if (!parsed.success) return badRequest(reply, parsed.error);
    return reply.code(201).send(await simulator().setFault(parsed.data));
  });
  app.delete('/__sim/faults', async (request) => {
    const key = (request.query as Partial<Record<Key, string>>)[orderKey];
    const filter = (key ? { [orderKey]: key } : {}) as ClearFaultsFilter<Key>;
    return { cleared: await simulator().clearFaults(filter) };
  });
  app.delete('/__sim/faults/:id', async (request) => ({ cleared: await simulator().clearFaults({ id: Number((request.params as { id: string }).id) } as ClearFaultsFilter<Key>) }));
  app.post('/__sim/notifications/deliver', async () => simulator().deliverDueNotifications());
  app.get('/healthz', async () => ({ status: 'ok' }));
}
