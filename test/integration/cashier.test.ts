import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PaymentView } from '../../src/payments/index.js';
import { startPaymentsHarness, type PaymentsHarness } from '../helpers/payments-harness.js';

/**
 * The cashier over HTTP: the page for every state and kind of method, the
 * status the page polls, a payer's choice for a `cashier` payment, languages,
 * and bad ids — which are 404s, never 500s.
 */
describe('cashier /pay/:id', () => {
  let harness: PaymentsHarness;
  beforeAll(async () => {
    harness = await startPaymentsHarness();
  });
  afterAll(async () => harness.close());

  async function createPayment(body: { method: string; amount?: number; subject?: string; return_url?: string; expires_in?: number }): Promise<PaymentView> {
    return harness.client.request<PaymentView>('POST', '/v1/payments', {
      out_trade_no: `order-${Math.random().toString(36).slice(2)}`,
      amount: body.amount ?? 1234,
      currency: 'CNY',
      subject: body.subject ?? 'Green tea',
      method: body.method,
      ...(body.return_url ? { return_url: body.return_url } : {}),
      ...(body.expires_in ? { expires_in: body.expires_in } : {}),
    });
  }

  const get = (url: string, headers: Record<string, string> = {}) => harness.app.inject({ method: 'GET', url, headers });
  const chooseMethod = (id: string, form: string, headers: Record<string, string> = {}) =>
    harness.app.inject({ method: 'POST', url: `/pay/${id}/method`, headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, payload: form });
  const stateOf = (html: string) => /<main id="cashier" class="card" data-state="(\w+)"/.exec(html)?.[1];

  it('renders a QR payment with its QR code, amount, merchant and a strict CSP', async () => {
    const payment = await createPayment({ method: 'alipay_qr', subject: 'Green tea <b>& "cakes"</b>' });
    const response = await get(`/pay/${payment.id}`);
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(response.headers['cache-control']).toBe('no-store');
    const policy = String(response.headers['content-security-policy']);
    const nonce = /script-src 'nonce-([A-Za-z0-9+/=]+)'/.exec(policy)?.[1];
    expect(nonce).toBeTruthy();
    expect(policy).toContain(`style-src 'nonce-${nonce}'`);
    expect(policy).toContain("default-src 'none'");
    expect(response.body).toContain(`<script nonce="${nonce}">`);
    expect(response.body).toContain(`<style nonce="${nonce}">`);
    expect(stateOf(response.body)).toBe('open');
    expect(response.body).toContain('data-testid="qr"><svg');
    expect(response.body).toContain(`href="${payment.qr_code}"`);
    expect(response.body).toContain('>¥12.34<');
    expect(response.body).toContain('>测试商户<');
    expect(response.body).toContain('Green tea &#60;b&#62;&#38; &#34;cakes&#34;&#60;/b&#62;');
    // A second request gets a fresh nonce.
    const again = await get(`/pay/${payment.id}`);
    expect(again.headers['content-security-policy']).not.toBe(policy);
  });

  it('shows nothing internal: no merchant, app or channel ids, no order number, no URLs but the payer’s', async () => {
    const payment = await createPayment({ method: 'alipay_qr' });
    const html = (await get(`/pay/${payment.id}`)).body;
    const row = await harness.context.db.selectFrom('payments').selectAll().where('id', '=', payment.id).executeTakeFirstOrThrow();
    for (const secret of [row.merchant_id, row.app_id, row.channel_account_id, row.out_trade_no, row.notify_url, row.channel_trade_no, harness.merchantApp.app_secret, harness.merchantApp.webhook_secret]) {
      if (secret) expect(html).not.toContain(secret);
    }
    expect(html).not.toMatch(/fee|杭州测试商户有限公司/);
  });

  it('renders a page-pay payment with one button to its pay URL', async () => {
    const payment = await createPayment({ method: 'alipay_page' });
    expect(payment.pay_url).toBeTruthy();
    const html = (await get(`/pay/${payment.id}?lang=en`)).body;
    expect(html).toContain(`href="${(payment.pay_url ?? '').replace(/&/g, '&#38;')}"`);
    expect(html).toContain('>Continue to Alipay</a>');
    expect(html).not.toContain('data-testid="qr"');
  });

  it('lets the payer choose a method for a cashier payment, then shows its QR code', async () => {
    const payment = await createPayment({ method: 'cashier' });
    expect(payment.status).toBe('created');
    const page = (await get(`/pay/${payment.id}?lang=en`)).body;
    expect(page).toContain('Choose how to pay');
    expect([...page.matchAll(/name="method" value="(\w+)"/g)].map((match) => match[1])).toEqual(['alipay_qr', 'alipay_page']);
    const chosen = await chooseMethod(payment.id, 'method=alipay_qr&lang=en', { 'sec-fetch-site': 'same-origin', origin: harness.fenUrl });
    expect(chosen.statusCode).toBe(303);
    expect(chosen.headers.location).toBe(`/pay/${payment.id}?lang=en`);
    const after = await harness.client.request<PaymentView>('GET', `/v1/payments/${payment.id}`);
    expect(after).toMatchObject({ status: 'paying', method: 'alipay_qr', channel: 'alipay' });
    expect(after.qr_code).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/alipay\/qr\//);
    const shown = (await get(`/pay/${payment.id}?lang=en`)).body;
    expect(shown).toContain('data-testid="qr"><svg');
    expect(shown).toContain(`href="${after.qr_code}"`);
    expect(shown).not.toContain('Choose how to pay');
    // Choosing again (a double click, another tab) changes nothing and sends the payer back to the page.
    const twice = await chooseMethod(payment.id, 'method=alipay_page');
    expect(twice.statusCode).toBe(303);
    expect((await harness.client.request<PaymentView>('GET', `/v1/payments/${payment.id}`)).method).toBe('alipay_qr');
  });

  it('refuses a method the app has not enabled, a malformed choice and a choice from another site', async () => {
    const payment = await createPayment({ method: 'cashier' });
    const notEnabled = await chooseMethod(payment.id, 'method=wechat_native');
    expect(notEnabled.statusCode).toBe(422);
    expect(notEnabled.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(notEnabled.body).toContain('暂时无法使用该支付方式');
    for (const form of ['method=cashier', 'method=', '', 'method=alipay_qr%00', 'method=ALIPAY_QR', `method=${'x'.repeat(5000)}`]) {
      const malformed = await chooseMethod(payment.id, form);
      expect(malformed.statusCode, form).toBe(400);
      expect(malformed.headers['content-type']).toBe('text/html; charset=utf-8');
    }
    const json = await harness.app.inject({ method: 'POST', url: `/pay/${payment.id}/method`, headers: { 'content-type': 'application/json' }, payload: '[1,2]' });
    expect(json.statusCode).toBe(400);
    const crossSite = await chooseMethod(payment.id, 'method=alipay_qr', { 'sec-fetch-site': 'cross-site', origin: 'https://evil.test' });
    expect(crossSite.statusCode).toBe(403);
    const foreignOrigin = await chooseMethod(payment.id, 'method=alipay_qr', { origin: 'https://evil.test' });
    expect(foreignOrigin.statusCode).toBe(403);
    const unchanged = await harness.client.request<PaymentView>('GET', `/v1/payments/${payment.id}`);
    expect(unchanged).toMatchObject({ status: 'created', method: 'cashier', channel: null });
  });

  it('answers the status the page polls, and the page turns paid once the payer pays', async () => {
    const payment = await createPayment({ method: 'alipay_qr' });
    const before = await get(`/pay/${payment.id}/status`);
    expect(before.statusCode).toBe(200);
    expect(before.headers['cache-control']).toBe('no-store');
    expect(before.json()).toEqual({ status: 'paying', paid_at: null, expires_at: payment.expires_at });
    await harness.payerPresses(payment, 'pay');
    await harness.deliverAll();
    const after = (await get(`/pay/${payment.id}/status`)).json<{ status: string; paid_at: string | null }>();
    expect(after.status).toBe('succeeded');
    expect(after.paid_at).toMatch(/^\d{4}-\d{2}-\d{2}T/);
    const html = (await get(`/pay/${payment.id}`)).body;
    expect(stateOf(html)).toBe('paid');
    expect(html).toContain('<h1>支付成功</h1>');
    expect(html).not.toContain('data-testid="qr"');
  });

  it('shows a closed payment as closed, and offers a return link only when paid', async () => {
    const payment = await createPayment({ method: 'alipay_qr', return_url: 'https://shop.test/orders/42' });
    await harness.client.request<PaymentView>('POST', `/v1/payments/${payment.id}/close`);
    const html = (await get(`/pay/${payment.id}?lang=en`)).body;
    expect(stateOf(html)).toBe('closed');
    expect(html).toContain('<h1>Closed</h1>');
    expect((await get(`/pay/${payment.id}/status`)).json()).toMatchObject({ status: 'closed', paid_at: null });
  });

  it('switches language by ?lang=, then Accept-Language, then Chinese', async () => {
    const payment = await createPayment({ method: 'alipay_qr' });
    const languageOf = async (query: string, headers: Record<string, string> = {}) => /<html lang="([\w-]+)">/.exec((await get(`/pay/${payment.id}${query}`, headers)).body)?.[1];
    expect(await languageOf('')).toBe('zh-CN');
    expect(await languageOf('?lang=en')).toBe('en');
    expect(await languageOf('', { 'accept-language': 'en-US,en;q=0.9' })).toBe('en');
    expect(await languageOf('?lang=zh', { 'accept-language': 'en-US' })).toBe('zh-CN');
    expect(await languageOf('?lang=fr', { 'accept-language': 'en' })).toBe('en');
    expect(await languageOf('?lang=en&lang=zh')).toBe('zh-CN');
    expect((await get(`/pay/${payment.id}`)).headers.vary).toContain('Accept-Language');
  });

  it('answers unknown and malformed ids with a 404 page, and JSON for the status', async () => {
    const unknown = 'pay_01jz0000000000000000000000';
    for (const id of [unknown, 'nope', 'mch_01jz0000000000000000000000', 'PAY_01JZ0000000000000000000000', '%3Cscript%3Ealert(1)%3C%2Fscript%3E', 'x'.repeat(100), '%E4%BD%A0%E5%A5%BD', '%00']) {
      const page = await get(`/pay/${id}`);
      expect(page.statusCode, id).toBe(404);
      expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(page.body).toContain('找不到这笔订单');
      expect(page.body).not.toContain('<script>alert');
      const status = await get(`/pay/${id}/status`);
      expect(status.statusCode, id).toBe(404);
      expect(status.json()).toEqual({ error: { code: 'not_found', message: 'no such payment' } });
      const choice = await chooseMethod(id, 'method=alipay_qr');
      expect(choice.statusCode, id).toBe(404);
    }
    expect((await get(`/pay/${unknown}?lang=en`)).body).toContain('Payment not found');
    expect((await get('/pay/')).statusCode).toBe(404);
    // Fastify refuses a path parameter longer than its limit before any route runs: still a 4xx, never a 500.
    const tooLong = await get(`/pay/${'x'.repeat(3000)}`);
    expect(tooLong.statusCode).toBe(414);
    expect(tooLong.body).not.toContain('x'.repeat(200));
  });

  // Last: it moves the shared clock past every payment's expiry.
  it('shows an open payment past its expiry as expired, and refuses a late choice', async () => {
    const qr = await createPayment({ method: 'alipay_qr', expires_in: 60 });
    const cashier = await createPayment({ method: 'cashier', expires_in: 60 });
    harness.context.clock.advanceSeconds(61);
    const html = (await get(`/pay/${qr.id}?lang=en`)).body;
    expect(stateOf(html)).toBe('expired');
    expect(html).toContain('<h1>Expired</h1>');
    expect(html).not.toContain('data-testid="qr"');
    const late = await chooseMethod(cashier.id, 'method=alipay_qr');
    expect(late.statusCode).toBe(303);
    expect((await harness.client.request<PaymentView>('GET', `/v1/payments/${cashier.id}`)).channel).toBeNull();
    expect(stateOf((await get(`/pay/${cashier.id}`)).body)).toBe('expired');
  });
});
