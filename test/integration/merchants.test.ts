import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { buildApp } from '../../src/main/app.js';
import { createMerchant, revealSettlementAccountNumber, type MerchantView } from '../../src/merchants/index.js';
import type { MerchantStatus } from '../../src/platform/db/index.js';
import { createTestContext, type TestContext } from '../helpers/context.js';
import { merchantInput, randomLicenceNumber, testAccountNumber, testOperatorActor } from '../helpers/merchant-api.js';
import { signInOperator } from '../helpers/operators.js';
import { fingerprintDatabase } from '../helpers/snapshot.js';

describe('merchants', () => {
  let context: TestContext;
  let app: FastifyInstance;
  let admin: Record<string, string>;

  beforeAll(async () => {
    context = await createTestContext();
    app = await buildApp(context, { logRequests: false });
    admin = (await signInOperator(app, context, { roles: ['admin'] })).headers;
  });
  afterAll(async () => {
    await app.close();
    await context.close();
  });

  async function post(url: string, payload?: unknown, headers = admin) {
    return app.inject({ method: 'POST', url, headers, ...(payload === undefined ? {} : { payload: payload as object }) });
  }

  async function onboard(overrides: Parameters<typeof merchantInput>[0] = {}): Promise<MerchantView> {
    const response = await post('/admin/v1/merchants', merchantInput(overrides));
    expect(response.statusCode, response.body).toBe(201);
    return response.json<MerchantView>();
  }

  /** Drives a new merchant into the given status through the real routes. */
  async function merchantIn(status: MerchantStatus): Promise<MerchantView> {
    const merchant = await onboard();
    const steps: Record<MerchantStatus, Array<[string, unknown]>> = {
      pending_review: [],
      active: [['review', { decision: 'approve' }]],
      rejected: [['review', { decision: 'reject', reason: 'licence photo unreadable' }]],
      frozen: [['review', { decision: 'approve' }], ['freeze', { reason: 'chargeback spike' }]],
      closed: [['close', { reason: 'merchant asked to leave' }]],
    };
    for (const [action, body] of steps[status]) {
      const response = await post(`/admin/v1/merchants/${merchant.id}/${action}`, body);
      expect(response.statusCode, response.body).toBe(200);
    }
    return { ...merchant, status };
  }

  async function auditRowsText(targetId: string): Promise<string> {
    const result = await sql<{ text: string }>`SELECT coalesce(string_agg(a::text, '|'), '') AS text FROM audit_log a WHERE target_id = ${targetId}`.execute(context.db);
    return result.rows[0]?.text ?? '';
  }

  /** Every row of every table as text: the account number must appear nowhere in clear. */
  async function wholeDatabaseText(): Promise<string> {
    const tables = await sql<{ table_name: string }>`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`.execute(context.db);
    const parts: string[] = [];
    for (const { table_name: table } of tables.rows) {
      const result = await sql<{ text: string | null }>`SELECT string_agg(t::text, '|') AS text FROM ${sql.table(table)} t`.execute(context.db);
      parts.push(result.rows[0]?.text ?? '');
    }
    return parts.join('\n');
  }

  it('onboards a merchant in pending_review with the account number sealed and shown masked', async () => {
    const response = await post('/admin/v1/merchants', merchantInput({ name: 'Acme Tea', business_licence_no: ' 91330100mA2b3c4d5e ' }));
    expect(response.statusCode, response.body).toBe(201);
    const merchant = response.json<MerchantView>();
    expect(merchant).toMatchObject({
      name: 'Acme Tea',
      status: 'pending_review',
      business_licence_no: '91330100MA2B3C4D5E',
      settlement_account: { account_number: '****3445' },
      fee_plan: { rate_basis_points: 60, minimum_minor: 1, maximum_minor: 5000 },
      settlement_cycle: 'T1',
      risk_level: 'normal',
    });
    expect(merchant.id).toMatch(/^mch_/);
    expect(response.body).not.toContain(testAccountNumber);
    const row = await context.db.selectFrom('merchants').selectAll().where('id', '=', merchant.id).executeTakeFirstOrThrow();
    expect(row.settlement_account_number_sealed).not.toContain(testAccountNumber);
    expect(row.settlement_account_number_last4).toBe('3445');
    expect(await revealSettlementAccountNumber(context, merchant.id)).toBe(testAccountNumber);
    const audit = await auditRowsText(merchant.id);
    expect(audit).toContain('merchant.created');
    expect(audit).toContain('****3445');
    expect(audit).not.toContain(testAccountNumber);
  });

  it('accepts an old-style 15-digit licence and applies defaults when the fee plan is left out', async () => {
    const { fee_plan: _omitted, settlement_cycle: _cycle, risk_level: _risk, ...input } = merchantInput({ business_licence_no: '330100000123456' });
    const response = await post('/admin/v1/merchants', input);
    expect(response.statusCode, response.body).toBe(201);
    expect(response.json()).toMatchObject({ fee_plan: { rate_basis_points: 60, minimum_minor: 0, maximum_minor: null }, settlement_cycle: 'T1', risk_level: 'normal' });
  });

  it('refuses bad onboarding documents with 400 and changes nothing', async () => {
    const before = await fingerprintDatabase(context.db);
    const good = merchantInput();
    const badInputs: unknown[] = [
      { ...good, business_licence_no: '1234' },
      { ...good, business_licence_no: '91330100MA2B3C4D5I' },
      { ...good, settlement_account: { ...good.settlement_account, account_number: '6222-0202-0011' } },
      { ...good, settlement_account: { ...good.settlement_account, account_number: '1234567' } },
      { ...good, settlement_account: { ...good.settlement_account, account_number: '1'.repeat(35) } },
      { ...good, contact: { ...good.contact, email: 'not-an-email' } },
      { ...good, contact: { ...good.contact, phone: 'call me' } },
      { ...good, fee_plan: { rate_basis_points: 10_001 } },
      { ...good, fee_plan: { rate_basis_points: 1.5 } },
      { ...good, fee_plan: { rate_basis_points: 60, minimum_minor: 100, maximum_minor: 50 } },
      { ...good, settlement_cycle: 'weekly' },
      { ...good, risk_level: 'extreme' },
      { ...good, name: '' },
      { ...good, unexpected: true },
      { name: 'only a name' },
      [],
    ];
    for (const input of badInputs) {
      const response = await post('/admin/v1/merchants', input);
      expect(response.statusCode, JSON.stringify(input)).toBe(400);
      expect(response.json().error.code).toBe('invalid_request');
      expect(response.body).not.toContain(testAccountNumber);
      expect(response.body).not.toContain('6222-0202-0011');
    }
    const notJson = await app.inject({ method: 'POST', url: '/admin/v1/merchants', headers: { ...admin, 'content-type': 'application/json' }, payload: '{"name":' });
    expect(notJson.statusCode).toBe(400);
    expect(notJson.json().error.code).toBe('invalid_request');
    expect(await fingerprintDatabase(context.db)).toEqual(before);
  });

  it('refuses a second live merchant with the same licence, but allows one after a rejection', async () => {
    const licence = randomLicenceNumber();
    const first = await onboard({ business_licence_no: licence });
    const duplicate = await post('/admin/v1/merchants', merchantInput({ business_licence_no: licence }));
    expect(duplicate.statusCode).toBe(409);
    expect(duplicate.json().error.code).toBe('duplicate');
    await post(`/admin/v1/merchants/${first.id}/review`, { decision: 'reject', reason: 'incomplete documents' });
    const again = await post('/admin/v1/merchants', merchantInput({ business_licence_no: licence }));
    expect(again.statusCode, again.body).toBe(201);
  });

  it('runs the lifecycle: approve, freeze, unfreeze, close, each audited with before and after', async () => {
    const merchant = await onboard();
    const approved = await post(`/admin/v1/merchants/${merchant.id}/review`, { decision: 'approve', reason: 'documents verified' });
    expect(approved.json()).toMatchObject({ status: 'active', status_reason: 'documents verified', reviewed_by: expect.stringMatching(/^usr_/) });
    expect((await post(`/admin/v1/merchants/${merchant.id}/freeze`, { reason: 'suspicious volume' })).json()).toMatchObject({ status: 'frozen', status_reason: 'suspicious volume' });
    expect((await post(`/admin/v1/merchants/${merchant.id}/unfreeze`)).json()).toMatchObject({ status: 'active', status_reason: null });
    expect((await post(`/admin/v1/merchants/${merchant.id}/close`, { reason: 'contract ended' })).json()).toMatchObject({ status: 'closed' });
    const rows = await context.db.selectFrom('audit_log').selectAll().where('target_id', '=', merchant.id).orderBy('sequence').execute();
    expect(rows.map((row) => row.action)).toEqual(['merchant.created', 'merchant.approved', 'merchant.frozen', 'merchant.unfrozen', 'merchant.closed']);
    expect(rows[2]?.before).toMatchObject({ status: 'active' });
    expect(rows[2]?.after).toMatchObject({ status: 'frozen', settlement_account: { account_number: '****3445' } });
    expect(rows.every((row) => row.actor_type === 'operator' && row.merchant_id === merchant.id)).toBe(true);
    expect(await auditRowsText(merchant.id)).not.toContain(testAccountNumber);
  });

  it('never stores the account number in clear anywhere in the database', async () => {
    await merchantIn('frozen');
    await merchantIn('rejected');
    expect(await wholeDatabaseText()).not.toContain(testAccountNumber);
  });

  it('refuses every illegal transition with 409 invalid_state and changes nothing', async () => {
    const actions: Array<{ name: string; path: string; body: unknown; allowedFrom: MerchantStatus[] }> = [
      { name: 'approve', path: 'review', body: { decision: 'approve' }, allowedFrom: ['pending_review'] },
      { name: 'reject', path: 'review', body: { decision: 'reject', reason: 'no' }, allowedFrom: ['pending_review'] },
      { name: 'freeze', path: 'freeze', body: { reason: 'risk' }, allowedFrom: ['active'] },
      { name: 'unfreeze', path: 'unfreeze', body: {}, allowedFrom: ['frozen'] },
      { name: 'close', path: 'close', body: { reason: 'done' }, allowedFrom: ['pending_review', 'active', 'frozen'] },
    ];
    const statuses: MerchantStatus[] = ['pending_review', 'active', 'rejected', 'frozen', 'closed'];
    const merchants = new Map<MerchantStatus, MerchantView>();
    for (const status of statuses) merchants.set(status, await merchantIn(status));
    const before = await fingerprintDatabase(context.db);
    let refused = 0;
    for (const status of statuses) {
      for (const action of actions.filter((candidate) => !candidate.allowedFrom.includes(status))) {
        const response = await post(`/admin/v1/merchants/${merchants.get(status)?.id}/${action.path}`, action.body);
        expect(response.statusCode, `${action.name} from ${status}`).toBe(409);
        expect(response.json().error.code).toBe('invalid_state');
        refused += 1;
      }
    }
    expect(refused).toBe(18);
    expect(await fingerprintDatabase(context.db)).toEqual(before);
  });

  it('lets exactly one of many racing reviews win', async () => {
    const merchant = await onboard();
    const decisions = Array.from({ length: 12 }, (_, index) =>
      index % 2 === 0 ? { decision: 'approve' } : { decision: 'reject', reason: `reviewer ${index} disagrees` },
    );
    const responses = await Promise.all(decisions.map((body) => post(`/admin/v1/merchants/${merchant.id}/review`, body)));
    const statuses = responses.map((response) => response.statusCode);
    expect(statuses.filter((status) => status === 200)).toHaveLength(1);
    expect(statuses.filter((status) => status === 409)).toHaveLength(11);
    const winner = responses.find((response) => response.statusCode === 200)?.json<MerchantView>();
    const stored = await context.db.selectFrom('merchants').select('status').where('id', '=', merchant.id).executeTakeFirstOrThrow();
    expect(stored.status).toBe(winner?.status);
    const reviews = await context.db.selectFrom('audit_log').select('action').where('target_id', '=', merchant.id).where('action', 'in', ['merchant.approved', 'merchant.rejected']).execute();
    expect(reviews).toHaveLength(1);
  });

  it('needs a reason to reject, freeze or close', async () => {
    const merchant = await onboard();
    const before = await fingerprintDatabase(context.db);
    for (const [path, body] of [
      ['review', { decision: 'reject' }],
      ['review', { decision: 'reject', reason: '   ' }],
      ['review', { decision: 'maybe' }],
      ['freeze', {}],
      ['close', undefined],
      ['close', { reason: 'x'.repeat(2001) }],
    ] as const) {
      const response = await post(`/admin/v1/merchants/${merchant.id}/${path}`, body);
      expect(response.statusCode, `${path} ${JSON.stringify(body)}`).toBe(400);
      expect(response.json().error.code).toBe('invalid_request');
    }
    expect(await fingerprintDatabase(context.db)).toEqual(before);
  });

  it('answers 404 merchant_not_found for unknown and malformed ids', async () => {
    for (const id of ['mch_01jc8x0000000000000000000a', 'nonsense', 'app_01jc8x0000000000000000000a']) {
      const read = await app.inject({ method: 'GET', url: `/admin/v1/merchants/${id}`, headers: admin });
      expect(read.statusCode).toBe(404);
      expect(read.json().error.code).toBe('merchant_not_found');
      const review = await post(`/admin/v1/merchants/${id}/review`, { decision: 'approve' });
      expect(review.json().error.code).toBe('merchant_not_found');
    }
  });

  it('lists merchants newest first with cursor pagination, status filter and prefix search', async () => {
    const prefix = `Pager${Date.now().toString(36)}`;
    const created: MerchantView[] = [];
    for (let index = 0; index < 5; index += 1) created.push(await createMerchant(context, testOperatorActor, merchantInput({ name: `${prefix} shop ${index}` })));
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const query: string = `q=${encodeURIComponent(prefix.toLowerCase())}&limit=2${cursor ? `&cursor=${cursor}` : ''}`;
      const page = await app.inject({ method: 'GET', url: `/admin/v1/merchants?${query}`, headers: admin });
      expect(page.statusCode, page.body).toBe(200);
      const body = page.json<{ data: MerchantView[]; next_cursor: string | null }>();
      expect(body.data.length).toBeLessThanOrEqual(2);
      seen.push(...body.data.map((merchant) => merchant.id));
      cursor = body.next_cursor;
    } while (cursor);
    expect(seen).toEqual(created.map((merchant) => merchant.id).reverse());

    const licence = created[0]?.business_licence_no ?? '';
    const byLicence = await app.inject({ method: 'GET', url: `/admin/v1/merchants?q=${licence.slice(0, 12).toLowerCase()}`, headers: admin });
    expect(byLicence.json().data.map((merchant: MerchantView) => merchant.id)).toContain(created[0]?.id);

    const active = await app.inject({ method: 'GET', url: '/admin/v1/merchants?status=active&limit=100', headers: admin });
    expect(active.json().data.every((merchant: MerchantView) => merchant.status === 'active')).toBe(true);
    const wildcard = await app.inject({ method: 'GET', url: `/admin/v1/merchants?q=${encodeURIComponent('%')}`, headers: admin });
    expect(wildcard.json().data).toEqual([]);
    expect(JSON.stringify(active.json())).not.toContain(testAccountNumber);
  });

  it('refuses bad list queries with 400', async () => {
    for (const query of ['cursor=abc', 'limit=0', 'limit=101', 'status=sleeping', 'limit=two', 'colour=blue']) {
      const response = await app.inject({ method: 'GET', url: `/admin/v1/merchants?${query}`, headers: admin });
      expect(response.statusCode, query).toBe(400);
      expect(['invalid_request', 'invalid_cursor']).toContain(response.json().error.code);
    }
  });

  it('enforces the operator permissions declared by each route', async () => {
    const merchant = await onboard();
    const auditor = (await signInOperator(app, context, { roles: ['auditor'] })).headers;
    const operations = (await signInOperator(app, context, { roles: ['operations'] })).headers;
    expect((await app.inject({ method: 'GET', url: `/admin/v1/merchants/${merchant.id}`, headers: auditor })).statusCode).toBe(200);
    const create = await post('/admin/v1/merchants', merchantInput(), auditor);
    expect(create.statusCode).toBe(403);
    expect(create.json().error.code).toBe('forbidden');
    expect((await post(`/admin/v1/merchants/${merchant.id}/close`, { reason: 'x' }, operations)).statusCode).toBe(403);
    expect((await app.inject({ method: 'GET', url: '/admin/v1/merchants' })).statusCode).toBe(401);
  });
});
