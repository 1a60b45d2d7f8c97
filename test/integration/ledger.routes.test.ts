import type { FastifyInstance, RouteOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  accountCodes,
  ensureMerchantAccounts,
  ensurePlatformAccounts,
  postEntry,
  registerLedgerRoutes,
  type MerchantAccounts,
  type PlatformAccounts,
} from '../../src/ledger/index.js';
import { createHttpServer } from '../../src/platform/http/index.js';
import { newId } from '../../src/platform/ids.js';
import { createTestContext, type TestContext } from '../helpers/context.js';

/**
 * The operator routes on a server of their own, with operator authentication
 * stubbed out: what is under test is the routes' contract (shapes, paging,
 * 4xx for bad input), and that every route asks for operator auth and the
 * ledger.read permission, which the real authenticator enforces.
 */
describe('ledger operator routes', () => {
  let context: TestContext;
  let app: FastifyInstance;
  const routes: RouteOptions[] = [];
  const merchantId = newId('merchant');
  let merchant: MerchantAccounts;
  let platform: PlatformAccounts;

  beforeAll(async () => {
    context = await createTestContext();
    app = await createHttpServer(context, { authenticateOperator: async () => {}, authenticateApp: async () => {}, logRequests: false });
    app.addHook('onRoute', (route) => {
      if (route.url.startsWith('/admin/v1/ledger')) routes.push(route);
    });
    registerLedgerRoutes(app, context);
    await app.ready();
    platform = await ensurePlatformAccounts(context.db, context.clock, 'CNY');
    merchant = await ensureMerchantAccounts(context.db, context.clock, merchantId, 'CNY');
    const booked = await postEntry(context.db, context.clock, {
      dedupeKey: 'payment:pay_routes:captured',
      kind: 'payment_captured',
      referenceType: 'payment',
      referenceId: 'pay_routes',
      merchantId,
      postings: [
        { accountId: platform.platformBank.id, amount: 10_000n, currency: 'CNY' },
        { accountId: merchant.pending.id, amount: -9_940n, currency: 'CNY' },
        { accountId: platform.platformFeeIncome.id, amount: -60n, currency: 'CNY' },
      ],
    });
    expect(booked.ok).toBe(true);
  });
  afterAll(async () => {
    await app.close();
    await context.close();
  });

  const get = (url: string) => app.inject({ method: 'GET', url });

  it('asks for an operator with ledger.read on every route', () => {
    // Fastify adds a HEAD route beside each GET; both carry the same config.
    expect(routes.map((route) => `${String(route.method)} ${route.url}`).sort()).toEqual([
      'GET /admin/v1/ledger/accounts',
      'GET /admin/v1/ledger/accounts/:id',
      'GET /admin/v1/ledger/entries',
      'HEAD /admin/v1/ledger/accounts',
      'HEAD /admin/v1/ledger/accounts/:id',
      'HEAD /admin/v1/ledger/entries',
    ]);
    for (const route of routes) expect(route.config).toMatchObject({ auth: 'operator', permission: 'ledger.read' });
  });

  it('lists a merchant\'s accounts with balances as JSON integers, page by page', async () => {
    const first = await get(`/admin/v1/ledger/accounts?merchant_id=${merchantId}&limit=2`);
    expect(first.statusCode).toBe(200);
    const page = first.json();
    expect(page.data).toHaveLength(2);
    expect(page.next_cursor).toBe(page.data[1].id);
    const second = (await get(`/admin/v1/ledger/accounts?merchant_id=${merchantId}&limit=2&cursor=${page.next_cursor}`)).json();
    expect(second.next_cursor).toBeNull();
    const pending = [...page.data, ...second.data].find((account: { code: string }) => account.code === accountCodes.merchantPending(merchantId));
    expect(pending).toMatchObject({ id: merchant.pending.id, type: 'liability', currency: 'CNY', slot_count: 8, no_overdraft: false, balance: -9940, normal_balance: 9940 });
  });

  it('filters accounts by code and currency', async () => {
    const response = await get('/admin/v1/ledger/accounts?code=platform_fee_income&currency=CNY');
    expect(response.json().data).toEqual([expect.objectContaining({ id: platform.platformFeeIncome.id, slot_count: 32, balance: -60, normal_balance: 60 })]);
    expect((await get('/admin/v1/ledger/accounts?code=platform_fee_income&currency=USD')).json().data).toEqual([]);
  });

  it('shows one account, and 404 for one that does not exist', async () => {
    const response = await get(`/admin/v1/ledger/accounts/${platform.platformBank.id}`);
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({ code: 'platform_bank', type: 'asset', balance: 10_000, normal_balance: 10_000, slot_count: 32 });
    const missing = await get(`/admin/v1/ledger/accounts/${newId('ledgerAccount')}`);
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.code).toBe('not_found');
  });

  it('lists the entries of a reference with their postings', async () => {
    const response = await get('/admin/v1/ledger/entries?reference_type=payment&reference_id=pay_routes');
    expect(response.statusCode).toBe(200);
    const [entry] = response.json().data;
    expect(entry).toMatchObject({ dedupe_key: 'payment:pay_routes:captured', kind: 'payment_captured', merchant_id: merchantId });
    expect(entry.postings.map((posting: { account_code: string; amount: number }) => [posting.account_code, posting.amount])).toEqual([
      ['platform_bank', 10_000],
      [accountCodes.merchantPending(merchantId), -9_940],
      ['platform_fee_income', -60],
    ]);
    expect((await get('/admin/v1/ledger/entries?reference_type=payment&reference_id=pay_other')).json()).toEqual({ data: [], next_cursor: null });
  });

  it('answers bad input with a 400 and a stable code, never a 500', async () => {
    for (const [url, code] of [
      ['/admin/v1/ledger/accounts?cursor=not-a-cursor', 'invalid_cursor'],
      ['/admin/v1/ledger/entries?cursor=acc_01arz3ndektsv4rrffq69g5fav', 'invalid_cursor'],
      ['/admin/v1/ledger/accounts?currency=cny', 'invalid_request'],
      ['/admin/v1/ledger/accounts?limit=0', 'invalid_request'],
      ['/admin/v1/ledger/accounts?limit=1000', 'invalid_request'],
      ['/admin/v1/ledger/entries?limit=abc', 'invalid_request'],
      [`/admin/v1/ledger/accounts/${'x'.repeat(100)}`, 'invalid_request'],
    ] as const) {
      const response = await get(url);
      expect({ url, status: response.statusCode, code: response.json().error?.code }).toEqual({ url, status: 400, code });
    }
  });
});
