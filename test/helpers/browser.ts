import { existsSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext, type ConsoleMessage, type Page } from 'playwright-core';

/**
 * Headless Chromium for browser tests: the Debian package's binary driven by
 * playwright-core, so no browser is downloaded. A missing Chromium fails the
 * test with a message saying how to install it; it never skips, because CI
 * installs it and a skipped browser test would hide a broken checkout.
 */
export const chromiumExecutablePath = process.env.FEN_CHROMIUM_PATH ?? '/usr/bin/chromium';

const chromiumArguments = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(chromiumExecutablePath)) {
    throw new Error(
      `Chromium was not found at ${chromiumExecutablePath}. The browser tests need it: install the Debian package (apt-get install chromium), or point FEN_CHROMIUM_PATH at a Chromium binary.`,
    );
  }
  return chromium.launch({ executablePath: chromiumExecutablePath, args: chromiumArguments });
}

/** An iPhone-sized screen: the cashier's main audience is a payer on a phone. */
export const phoneViewport = { width: 390, height: 844 };

/** A fresh browser context on a phone-sized screen; `locale` sets Accept-Language. */
export async function newPhoneContext(browser: Browser, options: { locale?: string } = {}): Promise<BrowserContext> {
  return browser.newContext({ viewport: phoneViewport, deviceScaleFactor: 2, isMobile: true, hasTouch: true, locale: options.locale ?? 'zh-CN' });
}

/**
 * Collects what the page reports as broken — Content-Security-Policy refusals
 * and uncaught script errors — so a test can assert that the page ran as
 * written rather than silently losing its script or style to the CSP.
 */
export function watchPageProblems(page: Page): string[] {
  const problems: string[] = [];
  page.on('console', (message: ConsoleMessage) => {
    if (message.type() === 'error' && /Content Security Policy|Refused to/i.test(message.text())) problems.push(message.text());
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  return problems;
}
