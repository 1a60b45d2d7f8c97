import QRCode, { type QRCode as QRCodeSymbol } from 'qrcode';
import { formatMinorAsDecimal, type Currency } from '../platform/money.js';
import { htmlLanguageTags, isCashierMethod, stringsFor, type CashierMethod, type CashierStrings, type Language } from './i18n.js';

/**
 * The cashier page (收银台) as pure functions of a view model: no database, no
 * clock, no randomness. The route gathers the facts and a CSP nonce; this file
 * turns them into one self-contained HTML document (inline CSS, inline SVG QR
 * code, one small inline script), escaping every value it prints.
 */

/** What the payer sees as the outcome; `open` means the payment can still be paid. */
export type CashierState = 'open' | 'paid' | 'closed' | 'failed' | 'expired';

export interface FormField {
  name: string;
  value: string;
}

/**
 * What the payer does next while the payment is open. The `form` kind holds a
 * channel's auto-submitting form (UnionPay gateway payments) as an action and
 * fields rather than as the channel's HTML, so the page escapes every value and
 * keeps its strict CSP instead of trusting markup from outside.
 */
export type PayerStep =
  | { kind: 'qr_code'; method: string; qrCode: string }
  | { kind: 'redirect'; method: string; payUrl: string }
  | { kind: 'form'; method: string; actionUrl: string; fields: readonly FormField[] }
  | { kind: 'choose'; methods: readonly CashierMethod[] }
  | { kind: 'waiting' };

export interface CashierView {
  language: Language;
  /** The CSP nonce of this response; the inline style and script carry it. */
  nonce: string;
  paymentId: string;
  merchantName: string;
  subject: string;
  amount: bigint;
  currency: Currency;
  state: CashierState;
  /** Seconds until the payment expires by the server's clock, so a phone with a wrong clock still counts right. */
  remainingSeconds: number;
  returnUrl: string | null;
  step: PayerStep;
}

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (character) => `&#${character.charCodeAt(0)};`);
}

const currencySymbols: Record<Currency, string> = { CNY: '¥', HKD: 'HK$', USD: 'US$', EUR: '€', JPY: 'JP¥' };

/** `¥12.34` from 1234 fen: the decimal comes from the money module, never from a float. */
export function formatAmount(amount: bigint, currency: Currency): string {
  return `${currencySymbols[currency]}${formatMinorAsDecimal(amount, currency)}`;
}

/** `mm:ss`, or `h:mm:ss` from an hour up; the inline script formats the same way. */
export function formatRemaining(totalSeconds: number): string {
  const seconds = Math.max(0, Math.floor(totalSeconds));
  const hours = Math.floor(seconds / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  const pad = (value: number) => String(value).padStart(2, '0');
  return hours > 0 ? `${hours}:${pad(minutes)}:${pad(seconds % 60)}` : `${pad(minutes)}:${pad(seconds % 60)}`;
}

/** Only web addresses become links or form targets: a `javascript:` or `data:` URL from anywhere is dropped. */
export function safeWebUrl(value: string): string | undefined {
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : undefined;
  } catch {
    return undefined;
  }
}

/** The schemes a QR code may carry besides the web's: the payer apps' own (WeChat Pay's `weixin://wxpay/…`). */
const payerAppSchemes = new Set(['http:', 'https:', 'weixin:', 'alipays:', 'alipay:', 'upwrp:']);

export function safePayerAppUrl(value: string): string | undefined {
  try {
    return payerAppSchemes.has(new URL(value).protocol) ? value : undefined;
  } catch {
    return undefined;
  }
}

/** A QR code's quiet zone, in modules: the four the standard asks for, so every scanner finds the symbol. */
const qrQuietZoneModules = 4;

/**
 * The QR code as inline SVG, encoded by the `qrcode` package and drawn as one
 * path (a rectangle per run of dark modules). Undefined when the text cannot
 * fit in a QR code; the page then offers only the link.
 */
export function qrCodeSvg(text: string, label: string): string | undefined {
  let symbol: QRCodeSymbol;
  try {
    symbol = QRCode.create(text, { errorCorrectionLevel: 'M' });
  } catch {
    return undefined;
  }
  const size = symbol.modules.size;
  const total = size + qrQuietZoneModules * 2;
  const runs: string[] = [];
  for (let row = 0; row < size; row += 1) {
    let column = 0;
    while (column < size) {
      if (!symbol.modules.get(row, column)) {
        column += 1;
        continue;
      }
      const start = column;
      while (column < size && symbol.modules.get(row, column)) column += 1;
      runs.push(`M${start + qrQuietZoneModules} ${row + qrQuietZoneModules}h${column - start}v1h-${column - start}z`);
    }
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${total} ${total}" shape-rendering="crispEdges" role="img" aria-label="${escapeHtml(label)}"><rect width="${total}" height="${total}" fill="#fff"/><path fill="#000" d="${runs.join('')}"/></svg>`;
}

/**
 * The Content-Security-Policy of a cashier response: nothing loads from
 * anywhere, only the nonce'd inline style and script run, the page talks only
 * to Fen, and forms post only to Fen (plus the channel's own form target when
 * the step is a channel form).
 */
export function contentSecurityPolicy(nonce: string, formTargets: readonly string[] = []): string {
  return [
    "default-src 'none'",
    `script-src 'nonce-${nonce}'`,
    `style-src 'nonce-${nonce}'`,
    "connect-src 'self'",
    `form-action ${["'self'", ...formTargets].join(' ')}`,
    "base-uri 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/** The origins besides Fen's that the page's forms may post to. */
export function formTargetsOf(view: CashierView): string[] {
  if (view.state !== 'open' || view.step.kind !== 'form') return [];
  const url = safeWebUrl(view.step.actionUrl);
  return url ? [new URL(url).origin] : [];
}

const styles = `
:root { color-scheme: light; --accent: #1677ff; --text: #1f2329; --muted: #8a8f99; --line: #e4e7ec; --ok: #12b76a; --off: #98a2b3; }
* { box-sizing: border-box; }
[hidden] { display: none !important; }
body { margin: 0; min-height: 100vh; background: #f2f4f7; color: var(--text);
  font: 16px/1.5 system-ui, -apple-system, "PingFang SC", "Hiragino Sans GB", "Microsoft YaHei", "Noto Sans CJK SC", sans-serif; }
.card { max-width: 440px; min-height: 100vh; margin: 0 auto; padding: 16px 20px 28px; background: #fff; }
@media (min-width: 480px) {
  body { padding: 40px 16px; }
  .card { min-height: 0; border-radius: 16px; box-shadow: 0 4px 24px rgba(16, 24, 40, .08); padding: 24px 28px 28px; }
}
.top { display: flex; justify-content: space-between; align-items: center; font-size: 14px; color: var(--muted); }
.top a { color: var(--accent); text-decoration: none; padding: 4px 0 4px 12px; }
.summary { text-align: center; padding: 20px 0 18px; border-bottom: 1px dashed var(--line); }
.merchant { margin: 0; font-weight: 600; overflow-wrap: anywhere; }
.subject { margin: 2px 0 0; color: var(--muted); overflow-wrap: anywhere; }
.amount { margin: 8px 0 0; font-size: 40px; font-weight: 700; font-variant-numeric: tabular-nums; line-height: 1.2; }
.panel { padding-top: 20px; text-align: center; }
.countdown { margin: 0 0 16px; font-size: 14px; color: var(--muted); }
.countdown time { color: var(--text); font-weight: 600; font-variant-numeric: tabular-nums; }
.instruction { margin: 0 0 12px; font-weight: 600; }
.qr { width: min(64vw, 240px); margin: 0 auto 16px; padding: 6px; border: 1px solid var(--line); border-radius: 12px; }
.qr svg { display: block; width: 100%; height: auto; }
.button { display: block; width: 100%; margin: 0; padding: 13px 16px; border: 1px solid var(--accent); border-radius: 10px;
  font: inherit; text-align: center; text-decoration: none; cursor: pointer; }
.primary { background: var(--accent); color: #fff; }
.secondary { background: #fff; color: var(--accent); }
.methods { display: grid; gap: 12px; }
h1 { margin: 0 0 4px; font-size: 22px; }
h2 { margin: 0 0 14px; font-size: 16px; font-weight: 600; }
.icon { display: grid; place-items: center; width: 64px; height: 64px; margin: 4px auto 12px; border-radius: 50%;
  background: var(--off); color: #fff; font-size: 34px; line-height: 1; }
.paid .icon { background: var(--ok); }
.detail, .notice { margin: 0 0 16px; color: var(--muted); }
.reference { margin: 28px 0 0; text-align: center; font-size: 12px; color: var(--off); word-break: break-all; }
`;

/**
 * The live part, with no values spliced in: it reads everything from data-
 * attributes, counts down from the server's remaining seconds, polls the status
 * every two seconds until the payment ends, and switches the visible panel.
 * Elapsed time comes from Date.now() differences, which keep counting while a
 * phone sleeps, and never from the phone's idea of the absolute time.
 */
const liveScript = `
(function () {
  'use strict';
  var root = document.getElementById('cashier');
  if (!root) return;
  var pollIntervalMs = 2000;
  var returnDelayMs = 1500;
  var statusUrl = root.getAttribute('data-status-url');
  var returnUrl = root.getAttribute('data-return-url') || '';
  var remainingSecondsAtLoad = Number(root.getAttribute('data-remaining-seconds')) || 0;
  var loadedAtMs = Date.now();
  var countdown = document.getElementById('countdown');
  var endedStates = { paid: true, closed: true, failed: true };
  var endedStatuses = { succeeded: true, closed: true, failed: true };
  var paymentEnded = endedStates[root.getAttribute('data-state')] === true;
  function state() { return root.getAttribute('data-state'); }
  function show(next) {
    root.setAttribute('data-state', next);
    var panels = root.querySelectorAll('[data-state-panel]');
    for (var index = 0; index < panels.length; index += 1) panels[index].hidden = panels[index].getAttribute('data-state-panel') !== next;
  }
  function pad(value) { return (value < 10 ? '0' : '') + value; }
  function format(seconds) {
    var hours = Math.floor(seconds / 3600), minutes = Math.floor((seconds % 3600) / 60);
    return hours > 0 ? hours + ':' + pad(minutes) + ':' + pad(seconds % 60) : pad(minutes) + ':' + pad(seconds % 60);
  }
  function tick() {
    if (state() !== 'open') return;
    var elapsedMs = Math.max(0, Date.now() - loadedAtMs);
    var leftSeconds = Math.max(0, remainingSecondsAtLoad - Math.floor(elapsedMs / 1000));
    if (countdown) countdown.textContent = format(leftSeconds);
    if (leftSeconds === 0) { show('expired'); return; }
    setTimeout(tick, 1000 - (elapsedMs % 1000));
  }
  function goBackToMerchant() {
    if (!/^https?:\\/\\//i.test(returnUrl)) return;
    var notice = document.getElementById('returning');
    if (notice) notice.hidden = false;
    setTimeout(function () { window.location.assign(returnUrl); }, returnDelayMs);
  }
  function apply(body) {
    if (!body || typeof body.status !== 'string') return;
    paymentEnded = endedStatuses[body.status] === true;
    if (body.status === 'succeeded') { show('paid'); goBackToMerchant(); }
    else if (body.status === 'failed') show('failed');
    else if (body.status === 'closed' && state() !== 'expired') show('closed');
  }
  function poll() {
    if (paymentEnded) return;
    fetch(statusUrl, { cache: 'no-store', credentials: 'same-origin', headers: { accept: 'application/json' } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(apply, function () { return null; })
      .then(function () { if (!paymentEnded) setTimeout(poll, pollIntervalMs); });
  }
  // A channel's form is sent by itself once per tab. A payer who comes back to
  // the cashier (UnionPay's front notification, a reload, the back button)
  // before the channel's notification reached Fen used to be sent to the
  // channel again, and again, until it did; now the page waits, polls and
  // offers the form's button. Found by test/e2e/unionpay-checkout.test.ts.
  var channelForm = document.getElementById('channel-form');
  function firstVisit() {
    try {
      var key = 'fen-channel-form:' + statusUrl;
      if (window.sessionStorage.getItem(key)) return false;
      window.sessionStorage.setItem(key, '1');
    } catch (error) { /* Without storage the form is sent each time, as before. */ }
    return true;
  }
  if (channelForm && state() === 'open' && firstVisit()) channelForm.submit();
  tick();
  setTimeout(poll, pollIntervalMs);
})();
`;

function documentOf(options: { language: Language; nonce: string; title: string; body: string; script: boolean }): string {
  const script = options.script ? `\n<script nonce="${escapeHtml(options.nonce)}">${liveScript}</script>` : '';
  return `<!doctype html>
<html lang="${htmlLanguageTags[options.language]}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover">
<meta name="robots" content="noindex, nofollow">
<title>${escapeHtml(options.title)}</title>
<style nonce="${escapeHtml(options.nonce)}">${styles}</style>
</head>
<body>
${options.body}${script}
</body>
</html>
`;
}

function methodLabel(strings: CashierStrings, method: string, labels: 'scanWith' | 'continueTo'): string {
  if (!isCashierMethod(method)) return labels === 'scanWith' ? strings.genericScan : strings.genericContinue;
  return strings[labels][method];
}

function qrStep(strings: CashierStrings, step: Extract<PayerStep, { kind: 'qr_code' }>): string {
  const svg = qrCodeSvg(step.qrCode, strings.qrLabel);
  const link = safePayerAppUrl(step.qrCode);
  const figure = svg ? `<figure class="qr" data-testid="qr">${svg}</figure>` : '';
  const open = link ? `<a class="button secondary" data-testid="open-in-app" rel="noreferrer" href="${escapeHtml(link)}">${escapeHtml(strings.openInPayerApp)}</a>` : '';
  return `<p class="instruction">${escapeHtml(methodLabel(strings, step.method, 'scanWith'))}</p>${figure}${open}`;
}

function redirectStep(strings: CashierStrings, step: Extract<PayerStep, { kind: 'redirect' }>): string {
  const url = safeWebUrl(step.payUrl);
  if (!url) return `<p class="notice">${escapeHtml(strings.waitingForChannel)}</p>`;
  return `<a class="button primary" data-testid="pay-link" rel="noreferrer" href="${escapeHtml(url)}">${escapeHtml(methodLabel(strings, step.method, 'continueTo'))}</a>`;
}

function formStep(strings: CashierStrings, step: Extract<PayerStep, { kind: 'form' }>): string {
  const url = safeWebUrl(step.actionUrl);
  if (!url) return `<p class="notice">${escapeHtml(strings.waitingForChannel)}</p>`;
  const fields = step.fields.map((field) => `<input type="hidden" name="${escapeHtml(field.name)}" value="${escapeHtml(field.value)}">`).join('');
  return `<form id="channel-form" method="post" action="${escapeHtml(url)}">${fields}<p class="notice">${escapeHtml(strings.formRedirecting)}</p><button class="button primary" type="submit">${escapeHtml(strings.formContinue)}</button></form>`;
}

function chooseStep(view: CashierView, strings: CashierStrings, step: Extract<PayerStep, { kind: 'choose' }>): string {
  if (step.methods.length === 0) return `<p class="notice" data-testid="no-methods">${escapeHtml(strings.noMethods)}</p>`;
  const buttons = step.methods.map((method) => `<button class="button secondary" type="submit" name="method" value="${escapeHtml(method)}">${escapeHtml(strings.methodNames[method])}</button>`).join('');
  return `<h2>${escapeHtml(strings.chooseMethod)}</h2><form class="methods" method="post" action="/pay/${escapeHtml(view.paymentId)}/method"><input type="hidden" name="lang" value="${view.language}">${buttons}</form>`;
}

function stepHtml(view: CashierView, strings: CashierStrings): string {
  const step = view.step;
  switch (step.kind) {
    case 'qr_code':
      return qrStep(strings, step);
    case 'redirect':
      return redirectStep(strings, step);
    case 'form':
      return formStep(strings, step);
    case 'choose':
      return chooseStep(view, strings, step);
    case 'waiting':
      return `<p class="notice">${escapeHtml(strings.waitingForChannel)}</p>`;
  }
}

function openPanel(view: CashierView, strings: CashierStrings): string {
  const countdown = `<p class="countdown">${escapeHtml(strings.timeLeft)} <time id="countdown" data-testid="countdown">${formatRemaining(view.remainingSeconds)}</time></p>`;
  return `<section class="panel" data-state-panel="open">${countdown}${stepHtml(view, strings)}</section>`;
}

function resultPanel(view: CashierView, state: Exclude<CashierState, 'open'>, content: { icon: string; title: string; detail: string; extra?: string }): string {
  const hidden = view.state === state ? '' : ' hidden';
  return `<section class="panel ${state}" data-state-panel="${state}" data-testid="state-${state}"${hidden}><div class="icon" aria-hidden="true">${content.icon}</div><h1>${escapeHtml(content.title)}</h1><p class="detail">${escapeHtml(content.detail)}</p>${content.extra ?? ''}</section>`;
}

function resultPanels(view: CashierView, strings: CashierStrings): string {
  const returnUrl = view.returnUrl ? safeWebUrl(view.returnUrl) : undefined;
  const back = returnUrl
    ? `<p class="notice" id="returning" hidden>${escapeHtml(strings.returning)}</p><a class="button secondary" data-testid="return-link" href="${escapeHtml(returnUrl)}">${escapeHtml(strings.backToMerchant)}</a>`
    : '';
  return [
    resultPanel(view, 'paid', { icon: '✓', title: strings.paid, detail: strings.paidDetail, extra: back }),
    resultPanel(view, 'closed', { icon: '×', title: strings.closed, detail: strings.closedDetail }),
    resultPanel(view, 'failed', { icon: '!', title: strings.failed, detail: strings.failedDetail }),
    resultPanel(view, 'expired', { icon: '⏱', title: strings.expired, detail: strings.expiredDetail }),
  ].join('\n');
}

function languageLink(language: Language, strings: CashierStrings): string {
  const other: Language = language === 'zh' ? 'en' : 'zh';
  return `<a href="?lang=${other}" hreflang="${htmlLanguageTags[other]}" lang="${htmlLanguageTags[other]}" data-testid="language">${escapeHtml(strings.otherLanguage)}</a>`;
}

/** The whole cashier page for one payment in one state. */
export function renderCashierPage(view: CashierView): string {
  const strings = stringsFor(view.language);
  const returnUrl = view.returnUrl ? (safeWebUrl(view.returnUrl) ?? '') : '';
  const attributes = [
    'id="cashier"',
    'class="card"',
    `data-state="${view.state}"`,
    `data-status-url="/pay/${escapeHtml(view.paymentId)}/status"`,
    `data-remaining-seconds="${Math.max(0, Math.floor(view.remainingSeconds))}"`,
    `data-return-url="${escapeHtml(returnUrl)}"`,
  ].join(' ');
  const body = `<main ${attributes}>
<header class="top"><span>${escapeHtml(strings.pageTitle)}</span>${languageLink(view.language, strings)}</header>
<section class="summary">
<p class="merchant" data-testid="merchant">${escapeHtml(view.merchantName)}</p>
<p class="subject" data-testid="subject">${escapeHtml(view.subject)}</p>
<p class="amount" data-testid="amount">${escapeHtml(formatAmount(view.amount, view.currency))}</p>
</section>
${view.state === 'open' ? openPanel(view, strings) : ''}
${resultPanels(view, strings)}
<p class="reference">${escapeHtml(strings.paymentReference)} ${escapeHtml(view.paymentId)}</p>
</main>`;
  return documentOf({ language: view.language, nonce: view.nonce, title: `${strings.pageTitle} · ${view.merchantName}`, body, script: true });
}

/** A page with a title, one sentence and an optional way back: not found, a refused choice. */
export function renderMessagePage(options: { language: Language; nonce: string; title: string; detail: string; backHref?: string }): string {
  const strings = stringsFor(options.language);
  const back = options.backHref ? `<a class="button secondary" data-testid="back" href="${escapeHtml(options.backHref)}">${escapeHtml(strings.backToCashier)}</a>` : '';
  const body = `<main class="card">
<header class="top"><span>${escapeHtml(strings.pageTitle)}</span></header>
<section class="panel"><div class="icon" aria-hidden="true">?</div><h1>${escapeHtml(options.title)}</h1><p class="detail">${escapeHtml(options.detail)}</p>${back}</section>
</main>`;
  return documentOf({ language: options.language, nonce: options.nonce, title: options.title, body, script: false });
}
