import { describe, expect, it } from 'vitest';
import { chooseLanguage, languageFromAcceptLanguage, stringsFor } from '../../src/cashier/i18n.js';

/** The payer's language: `?lang=` first, then Accept-Language, then Chinese. */
describe('cashier language', () => {
  it('reads the browser’s preference by weight', () => {
    expect(languageFromAcceptLanguage('en-US,en;q=0.9,zh-CN;q=0.8')).toBe('en');
    expect(languageFromAcceptLanguage('zh-CN,zh;q=0.9,en;q=0.8')).toBe('zh');
    expect(languageFromAcceptLanguage('fr-FR, en;q=0.5, zh;q=0.7')).toBe('zh');
    expect(languageFromAcceptLanguage('zh-TW')).toBe('zh');
    expect(languageFromAcceptLanguage('EN-gb')).toBe('en');
    expect(languageFromAcceptLanguage('en;q=0, zh;q=0.1')).toBe('zh');
  });

  it('falls back to Chinese for anything it cannot use', () => {
    expect(languageFromAcceptLanguage(undefined)).toBe('zh');
    expect(languageFromAcceptLanguage('')).toBe('zh');
    expect(languageFromAcceptLanguage('fr, de;q=0.5')).toBe('zh');
    expect(languageFromAcceptLanguage(';;;,,,q=')).toBe('zh');
    expect(languageFromAcceptLanguage(`en,${'x'.repeat(5000)}`)).toBe('zh');
    expect(languageFromAcceptLanguage('en;q=abc')).toBe('en');
  });

  it('lets ?lang= win over the header', () => {
    expect(chooseLanguage('en', 'zh-CN')).toBe('en');
    expect(chooseLanguage('zh', 'en-US')).toBe('zh');
    expect(chooseLanguage(undefined, 'en-US')).toBe('en');
    expect(chooseLanguage(undefined, undefined)).toBe('zh');
  });

  it('has every message in both languages', () => {
    const keys = (language: 'zh' | 'en') => Object.keys(stringsFor(language)).sort();
    expect(keys('en')).toEqual(keys('zh'));
    for (const language of ['zh', 'en'] as const) {
      for (const value of Object.values(stringsFor(language))) {
        const texts: string[] = typeof value === 'string' ? [value] : Object.values(value as Record<string, string>);
        for (const text of texts) expect(text.length).toBeGreaterThan(0);
      }
    }
  });
});
