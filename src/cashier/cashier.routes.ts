import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { chooseCashierMethod } from '../payments/index.js';
import type { PlatformContext } from '../platform/context.js';
import { FenError } from '../platform/errors.js';
import { errorResponseSchema } from '../platform/http/index.js';
import { contentSecurityPolicy, formTargetsOf, renderCashierPage, renderMessagePage } from './cashier.page.js';
import { cashierParamsSchema, cashierQuerySchema, cashierStatusSchema, chooseMethodBodySchema } from './cashier.schemas.js';
import { availableMethodsFor, awaitsMethodChoice, cashierStatusOf, cashierViewOf, findCashierPayment, isExpired, loadCashierFacts } from './cashier.service.js';
import { chooseLanguage, stringsFor, type Language } from './i18n.js';

/**
 * The hosted cashier (收银台, DESIGN.md §4): `GET /pay/:id` renders the page,
 * `GET /pay/:id/status` is what its script polls, and `POST /pay/:id/method`
 * takes the payer's choice for a `cashier` payment. None is authenticated: the
 * payment id in the URL is the capability, so the page shows only what a payer
 * may see.
 */
const tags = ['cashier'];

/** Bytes of randomness in each response's CSP nonce. */
const nonceBytes = 16;

function paymentIdOf(request: FastifyRequest): string {
  const parsed = cashierParamsSchema.safeParse(request.params);
  return parsed.success ? parsed.data.id : '';
}

function languageOf(request: FastifyRequest, explicit?: Language): Language {
  const query = cashierQuerySchema.safeParse(request.query ?? {});
  const acceptLanguage = request.headers['accept-language'];
  return chooseLanguage(explicit ?? (query.success ? query.data.lang : undefined), typeof acceptLanguage === 'string' ? acceptLanguage : undefined);
}

function sendHtml(reply: FastifyReply, status: number, html: string, nonce: string, formTargets: string[] = []): FastifyReply {
  return reply
    .code(status)
    .type('text/html; charset=utf-8')
    .header('content-security-policy', contentSecurityPolicy(nonce, formTargets))
    .header('x-frame-options', 'DENY')
    .header('cache-control', 'no-store')
    .header('vary', 'Accept-Language')
    .send(html);
}

function sendMessage(reply: FastifyReply, status: number, options: { language: Language; title: string; detail: string; backHref?: string }): FastifyReply {
  const nonce = randomBytes(nonceBytes).toString('base64');
  return sendHtml(reply, status, renderMessagePage({ ...options, nonce }), nonce);
}

function sendNotFound(reply: FastifyReply, language: Language): FastifyReply {
  const strings = stringsFor(language);
  return sendMessage(reply, 404, { language, title: strings.notFoundTitle, detail: strings.notFoundDetail });
}

export function registerCashierRoutes(app: FastifyInstance, context: PlatformContext): void {
  registerCashierPage(app, context);
  registerCashierStatus(app, context);
  registerMethodChoice(app, context);
  registerPayerReturn(app);
}

/**
 * Where a channel sends the payer's browser back after paying (its front URL).
 * UnionPay posts its front notification here; nothing in it is trusted — the
 * verified back notification or a query decides — so the payer is simply sent
 * on to the cashier page, which shows the payment as Fen knows it.
 */
function registerPayerReturn(app: FastifyInstance): void {
  const back = async (request: FastifyRequest, reply: FastifyReply) => reply.redirect(`/pay/${encodeURIComponent(paymentIdOf(request))}`, 303);
  app.get('/pay/:id/return', { schema: { hide: true }, config: { auth: 'none' } }, back);
  app.post('/pay/:id/return', { schema: { hide: true }, config: { auth: 'none' } }, back);
}

function registerCashierPage(app: FastifyInstance, context: PlatformContext): void {
  app.get('/pay/:id', { schema: { hide: true }, config: { auth: 'none' } }, async (request, reply) => {
    const language = languageOf(request);
    const payment = await findCashierPayment(context, paymentIdOf(request));
    if (!payment) return sendNotFound(reply, language);
    const facts = await loadCashierFacts(context, payment);
    const nonce = randomBytes(nonceBytes).toString('base64');
    const view = cashierViewOf(facts, { now: context.clock.now(), language, nonce });
    return sendHtml(reply, 200, renderCashierPage(view), nonce, formTargetsOf(view));
  });
}

function registerCashierStatus(app: FastifyInstance, context: PlatformContext): void {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  typed.get(
    '/pay/:id/status',
    {
      schema: { tags, summary: 'The status of a payment, for the cashier page to poll', response: { 200: cashierStatusSchema, 404: errorResponseSchema } },
      config: { auth: 'none' },
    },
    async (request, reply) => {
      const payment = await findCashierPayment(context, paymentIdOf(request));
      if (!payment) throw new FenError('not_found', 'no such payment');
      reply.header('cache-control', 'no-store');
      return cashierStatusOf(payment);
    },
  );
}

/**
 * A choice may only come from the cashier page itself: a browser that says the
 * form came from another site is refused, so no other page can pick a method
 * for a payer. Fetch metadata decides when the browser sends it; older browsers
 * are judged by Origin against Fen's public URL; clients that send neither are
 * not browsers and gain nothing from a forged choice.
 */
export function isSameOriginForm(headers: FastifyRequest['headers'], publicUrl: string): boolean {
  const fetchSite = headers['sec-fetch-site'];
  if (typeof fetchSite === 'string') return fetchSite === 'same-origin' || fetchSite === 'none';
  const origin = headers.origin;
  if (typeof origin !== 'string') return true;
  try {
    return origin === new URL(publicUrl).origin;
  } catch {
    return false;
  }
}

function registerMethodChoice(app: FastifyInstance, context: PlatformContext): void {
  app.post('/pay/:id/method', { schema: { hide: true }, config: { auth: 'none' } }, async (request, reply) => {
    const body = chooseMethodBodySchema.safeParse(request.body ?? {});
    const language = languageOf(request, body.success ? body.data.lang : undefined);
    const strings = stringsFor(language);
    const payment = await findCashierPayment(context, paymentIdOf(request));
    if (!payment) return sendNotFound(reply, language);
    const backHref = `/pay/${payment.id}?lang=${language}`;
    if (!isSameOriginForm(request.headers, context.config.publicUrl)) {
      return sendMessage(reply, 403, { language, title: strings.requestRefusedTitle, detail: strings.requestRefusedDetail, backHref });
    }
    if (!body.success) return sendMessage(reply, 400, { language, title: strings.requestRefusedTitle, detail: strings.requestRefusedDetail, backHref });
    // A choice that comes too late (another tab chose, or the order expired) is
    // not an error for the payer: the page they return to shows what happened.
    if (!awaitsMethodChoice(payment) || isExpired(payment, context.clock.now())) return reply.redirect(backHref, 303);
    const offered = await availableMethodsFor(context, payment);
    if (!offered.includes(body.data.method)) {
      return sendMessage(reply, 422, { language, title: strings.methodUnavailableTitle, detail: strings.methodUnavailableDetail, backHref });
    }
    try {
      // The payer's address goes with the choice: WeChat H5 orders are bound to it.
      await chooseCashierMethod(context, payment.id, body.data.method, { ip: request.ip });
    } catch (error) {
      if (!(error instanceof FenError)) throw error;
      if (error.code === 'invalid_state') return reply.redirect(backHref, 303);
      request.log.warn({ payment_id: payment.id, code: error.code }, 'the cashier could not start the chosen method');
      return sendMessage(reply, error.statusCode, { language, title: strings.methodUnavailableTitle, detail: strings.methodUnavailableDetail, backHref });
    }
    return reply.redirect(backHref, 303);
  });
}
