/**
 * The frame of every simulator's payer pages: one small HTML document with
 * inline styles, so the pages need no static files and render the same in a
 * person's browser, under `fetch` and in headless Chromium. Each channel
 * keeps its own page content and only picks its colours here, so a person
 * testing by hand can tell at a glance which channel's page is open.
 */

export interface PageTheme {
  /** The page behind the card. */
  background: string;
  /** Headings and buttons. */
  accent: string;
  /** The card's width; UnionPay's is wider for its merchant number. */
  mainWidthPx: number;
  /** Extra declarations on the card, such as UnionPay's red top bar. */
  mainExtra?: string;
  /** Extra rules after the shared ones. */
  extraRules?: string;
}

/** Escapes text for element content and quoted attributes; every value from a request or the database goes through it. */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (character) => `&#${character.charCodeAt(0)};`);
}

export function pageLayout(theme: PageTheme, title: string, content: string): string {
  const mainExtra = theme.mainExtra ? ` ${theme.mainExtra}` : '';
  const extraRules = theme.extraRules ? `\n  ${theme.extraRules}` : '';
  return `<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>
  body { font-family: system-ui, "PingFang SC", "Microsoft YaHei", sans-serif; background: ${theme.background}; margin: 0; }
  main { max-width: ${theme.mainWidthPx}px; margin: 48px auto; background: #fff; border-radius: 12px; padding: 28px; box-shadow: 0 2px 12px rgba(0,0,0,.08);${mainExtra} }
  h1 { font-size: 18px; color: ${theme.accent}; margin: 0 0 20px; }
  .amount { font-size: 36px; font-weight: 600; margin: 8px 0 20px; }
  dl { display: grid; grid-template-columns: auto 1fr; gap: 6px 12px; color: #555; font-size: 14px; }
  dt { color: #999; }${extraRules}
  .actions { display: flex; gap: 12px; margin-top: 24px; }
  .actions form { flex: 1; }
  button { width: 100%; padding: 12px; font-size: 16px; border-radius: 8px; border: 1px solid ${theme.accent}; cursor: pointer; }
  .primary { background: ${theme.accent}; color: #fff; }
  .secondary { background: #fff; color: ${theme.accent}; }
  .notice { font-size: 15px; color: #333; }
</style>
</head>
<body><main>${content}</main></body>
</html>`;
}

/** A page with only a heading and a sentence: errors, and pages that have nothing to offer. */
export function messagePageWith(theme: PageTheme, title: string, message: string): string {
  return pageLayout(theme, title, `<h1>${escapeHtml(title)}</h1><p class="notice">${escapeHtml(message)}</p>`);
}
