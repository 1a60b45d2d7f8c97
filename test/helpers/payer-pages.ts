/**
 * The payer's side of every simulator, over plain HTTP: open the page a payer
 * reaches from what the connector handed out (a QR code's URL, a redirect, a
 * form posted to the gateway), read its "Pay" and "Cancel" buttons, and press
 * one. Every simulator draws its buttons as `<form method="post" action="…/pay">`
 * and `…/cancel`, so one reader serves them all; how a payer gets to the page
 * is the channel's business (the contract suite's pair descriptions, the
 * payments harness's payerPresses).
 */

export type PayerButton = 'pay' | 'cancel';

export interface PayerPage {
  /** Where the payer ended up, after every redirect. */
  url: string;
  html: string;
  /**
   * The buttons' form targets as the page showed them when it was opened, so a
   * test can still press Pay after the order was closed, as a payer with the
   * page left open would.
   */
  buttons: Partial<Record<PayerButton, string>>;
}

function unescapeHtml(value: string): string {
  return value
    .replace(/&#(\d+);/g, (_match, code: string) => String.fromCharCode(Number(code)))
    .replace(/&amp;/g, '&')
    .replace(/&quot;/g, '"');
}

function buttonsOf(html: string, pageUrl: string): PayerPage['buttons'] {
  const buttons: PayerPage['buttons'] = {};
  for (const match of html.matchAll(/<form[^>]*method="post"[^>]*action="([^"]+)"/g)) {
    const target = new URL(unescapeHtml(match[1]!), pageUrl);
    const last = target.pathname.split('/').pop();
    if (last === 'pay' || last === 'cancel') buttons[last] = target.toString();
  }
  return buttons;
}

async function pageAt(response: Response, description: string): Promise<PayerPage> {
  const html = await response.text();
  if (response.status !== 200) throw new Error(`${description} answered ${response.status}:\n${html.slice(0, 500)}`);
  return { url: response.url, html, buttons: buttonsOf(html, response.url) };
}

/** Opens a page the way a phone does after scanning a QR code or following a link: GET, following redirects. */
export async function openPayerPageByLink(url: string): Promise<PayerPage> {
  return pageAt(await fetch(url, { redirect: 'follow' }), `opening ${url}`);
}

/** Posts a form to the channel's gateway as the payer's browser does, and follows it to the page it lands on. */
export async function openPayerPageByForm(actionUrl: string, fields: Record<string, string>): Promise<PayerPage> {
  const posted = await fetch(actionUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields).toString(),
    redirect: 'manual',
  });
  const location = posted.headers.get('location');
  if (posted.status < 300 || posted.status >= 400 || !location) {
    throw new Error(`posting the payment form to ${actionUrl} answered ${posted.status}:\n${(await posted.text()).slice(0, 500)}`);
  }
  return openPayerPageByLink(new URL(location, actionUrl).toString());
}

/** Presses a button; the simulators answer a press with a redirect back to the page. */
export async function pressPayerButton(page: PayerPage, button: PayerButton): Promise<void> {
  const target = page.buttons[button];
  if (!target) throw new Error(`no ${button} button on ${page.url}:\n${page.html.slice(0, 500)}`);
  const pressed = await fetch(target, { method: 'POST', redirect: 'manual' });
  if (pressed.status < 300 || pressed.status >= 400) throw new Error(`pressing ${button} on ${page.url} answered ${pressed.status}`);
}
