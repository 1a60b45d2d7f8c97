import iconv from 'iconv-lite';
import { BillFormatError, billLimits } from '../bill.types.js';

/**
 * The pieces every bill parser shares: bytes to lines without holding the
 * file, CSV cells, exact decimals, Beijing times. Kept free of any one
 * channel's layout.
 */

export type BillEncoding = 'utf8' | 'gbk';

/** The lines decoded from one chunk of the file, numbered from `firstLineNumber`. */
export interface LineBatch {
  firstLineNumber: number;
  lines: string[];
}

interface TextDecoding {
  write(chunk: Uint8Array): string;
  end(): string;
}

/**
 * GBK through the runtime's own decoder (ICU, in every official Node build)
 * where there is one — about three times as fast as iconv-lite's — and
 * through iconv-lite elsewhere. Both are strict in the same way in the end:
 * ICU throws on bytes that are not GBK, iconv-lite puts U+FFFD, which
 * `assertDecodable` refuses.
 */
function decoderFor(encoding: BillEncoding): TextDecoding {
  if (encoding === 'gbk') {
    try {
      const native = new TextDecoder('gbk', { fatal: true });
      return { write: (chunk) => native.decode(chunk, { stream: true }), end: () => native.decode() };
    } catch {
      const decoder = iconv.getDecoder('gbk');
      return { write: (chunk) => decoder.write(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)), end: () => decoder.end() ?? '' };
    }
  }
  // fatal: a UTF-8 bill with invalid bytes is corrupt, not something to guess at.
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  return { write: (chunk) => decoder.decode(chunk, { stream: true }), end: () => decoder.decode() };
}

/**
 * Reads a byte stream as lines, a batch per chunk, never holding more than one
 * chunk and one unfinished line. Splitting after decoding is safe for both
 * encodings: in UTF-8 and in GBK the byte 0x0A only ever stands for a line
 * feed, never for part of a wider character. A trailing CR is dropped, so CRLF
 * and LF files read alike. `onBytes` sees every byte as it passes (for hashes).
 */
export async function* readLineBatches(
  source: AsyncIterable<Uint8Array>,
  options: { encoding: BillEncoding; file: string; onBytes?: (chunk: Uint8Array) => void },
): AsyncGenerator<LineBatch, void, undefined> {
  const decoder = decoderFor(options.encoding);
  let pending = '';
  let nextLineNumber = 1;
  const split = (text: string, final: boolean): LineBatch => {
    const lines: string[] = [];
    let start = 0;
    for (let end = text.indexOf('\n'); end !== -1; end = text.indexOf('\n', start)) {
      lines.push(text.charCodeAt(end - 1) === 13 ? text.slice(start, end - 1) : text.slice(start, end));
      start = end + 1;
    }
    pending = text.slice(start);
    if (final && pending.length > 0) {
      lines.push(pending.endsWith('\r') ? pending.slice(0, -1) : pending);
      pending = '';
    }
    if (pending.length > billLimits.lineLengthMax) {
      throw new BillFormatError('malformed', options.file, nextLineNumber + lines.length, `line longer than ${billLimits.lineLengthMax} characters`);
    }
    const batch = { firstLineNumber: nextLineNumber, lines };
    nextLineNumber += lines.length;
    return batch;
  };
  try {
    for await (const chunk of source) {
      options.onBytes?.(chunk);
      const batch = split(pending + decoder.write(chunk), false);
      if (batch.lines.length > 0) yield batch;
    }
    const last = split(pending + decoder.end(), true);
    if (last.lines.length > 0) yield last;
  } catch (error) {
    if (error instanceof TypeError && /encoded data was not valid/i.test(error.message)) {
      throw new BillFormatError('malformed', options.file, nextLineNumber, `the file is not valid ${options.encoding === 'gbk' ? 'GBK' : 'UTF-8'}`);
    }
    throw error;
  }
}

/**
 * The same for fixed-width files whose fields are counted in bytes (UnionPay):
 * lines stay bytes, split at LF with a trailing CR dropped.
 */
export async function* readByteLineBatches(
  source: AsyncIterable<Uint8Array>,
  options: { file: string },
): AsyncGenerator<{ firstLineNumber: number; lines: Buffer[] }, void, undefined> {
  let pending: Buffer = Buffer.alloc(0);
  let nextLineNumber = 1;
  const split = (bytes: Buffer, final: boolean) => {
    const lines: Buffer[] = [];
    let start = 0;
    for (let end = bytes.indexOf(10); end !== -1; end = bytes.indexOf(10, start)) {
      lines.push(bytes.subarray(start, end > start && bytes[end - 1] === 13 ? end - 1 : end));
      start = end + 1;
    }
    // Copy the unfinished tail so the chunk it came from can be collected.
    pending = Buffer.from(bytes.subarray(start));
    if (final && pending.length > 0) {
      lines.push(pending[pending.length - 1] === 13 ? pending.subarray(0, -1) : pending);
      pending = Buffer.alloc(0);
    }
    if (pending.length > billLimits.lineLengthMax) {
      throw new BillFormatError('malformed', options.file, nextLineNumber + lines.length, `line longer than ${billLimits.lineLengthMax} bytes`);
    }
    const batch = { firstLineNumber: nextLineNumber, lines };
    nextLineNumber += lines.length;
    return batch;
  };
  for await (const chunk of source) {
    const bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const batch = split(pending.length > 0 ? Buffer.concat([pending, bytes]) : bytes, false);
    if (batch.lines.length > 0) yield batch;
  }
  const last = split(pending, true);
  if (last.lines.length > 0) yield last;
}

/** GBK decoding replaces bytes it cannot read with U+FFFD; a bill containing one was not GBK. */
export function assertDecodable(line: string, file: string, lineNumber: number): void {
  if (line.includes('\uFFFD')) throw new BillFormatError('malformed', file, lineNumber, 'bytes that are not valid in the file’s encoding');
}

/**
 * The cells of one CSV record (RFC 4180 quoting), or `undefined` when a quoted
 * cell is still open at the end of the text — the caller then appends the next
 * physical line. Most bill lines have no quotes and take the fast path.
 */
export function splitCsvRecord(text: string): string[] | undefined {
  if (!text.includes('"')) return text.split(',');
  const cells: string[] = [];
  let position = 0;
  for (;;) {
    if (text.charCodeAt(position) !== 34 /* " */) {
      const comma = text.indexOf(',', position);
      if (comma === -1) {
        cells.push(text.slice(position));
        return cells;
      }
      cells.push(text.slice(position, comma));
      position = comma + 1;
      continue;
    }
    // A quoted cell: up to the quote that is not doubled, then a comma or the end.
    let cell = '';
    let from = position + 1;
    for (;;) {
      const quote = text.indexOf('"', from);
      if (quote === -1) return undefined;
      cell += text.slice(from, quote);
      if (text.charCodeAt(quote + 1) === 34) {
        cell += '"';
        from = quote + 2;
        continue;
      }
      position = quote + 1;
      break;
    }
    // Anything between the closing quote and the comma belongs to the cell, as lenient readers keep it.
    const comma = text.indexOf(',', position);
    cells.push(cell + text.slice(position, comma === -1 ? undefined : comma));
    if (comma === -1) return cells;
    position = comma + 1;
  }
}

/**
 * Reassembles CSV records across physical lines (a quoted cell may hold a
 * line break) and hands each record with the number of the line it starts on.
 */
export class CsvRecordAssembler {
  private open: { text: string; lineNumber: number; lines: number } | undefined;

  constructor(private readonly file: string) {}

  /** Whether a quoted cell is open: the next physical line belongs to it, whatever it looks like. */
  get isOpen(): boolean {
    return this.open !== undefined;
  }

  /** Returns the record's cells, or undefined while a quoted cell continues on the next line. */
  push(line: string, lineNumber: number): { cells: string[]; lineNumber: number } | undefined {
    const text = this.open ? `${this.open.text}\n${line}` : line;
    const startLine = this.open?.lineNumber ?? lineNumber;
    const cells = splitCsvRecord(text);
    if (cells) {
      this.open = undefined;
      return { cells, lineNumber: startLine };
    }
    const lines = (this.open?.lines ?? 0) + 1;
    if (lines >= billLimits.recordLinesMax || text.length > billLimits.lineLengthMax) {
      throw new BillFormatError('malformed', this.file, startLine, 'a quoted cell that never closes');
    }
    this.open = { text, lineNumber: startLine, lines };
    return undefined;
  }

  /** Called at the end of the file: a record still open there is a broken file. */
  finish(): void {
    if (this.open) throw new BillFormatError('malformed', this.file, this.open.lineNumber, 'a quoted cell that never closes');
  }
}

// ---------------------------------------------------------------------------
// Exact decimals

const decimalPattern = /^([+-]?)(\d{1,18})(?:\.(\d{1,12}))?$/;
/** Up to this many integer digits, a value and its fraction fit a double exactly (2^53 ≈ 9.007e15). */
const fastWholeDigitsMax = 13;

/**
 * The common case of decimalToMinor without a regular expression or BigInt
 * arithmetic — "-12.34", "0.00", "10000.00" — done in exact double-precision
 * integers; `undefined` hands anything else to the general path.
 */
function fastDecimalToMinor(text: string, minorDigits: number): bigint | undefined {
  let index = 0;
  const negative = text.charCodeAt(0) === 45; /* - */
  if (negative || text.charCodeAt(0) === 43 /* + */) index = 1;
  let whole = 0;
  let wholeDigits = 0;
  for (; index < text.length; index += 1) {
    const code = text.charCodeAt(index) - 48;
    if (code < 0 || code > 9) break;
    whole = whole * 10 + code;
    wholeDigits += 1;
  }
  if (wholeDigits === 0 || wholeDigits > fastWholeDigitsMax) return undefined;
  let fraction = 0;
  let fractionDigits = 0;
  if (index < text.length) {
    if (text.charCodeAt(index) !== 46 /* . */ || index === text.length - 1) return undefined;
    for (index += 1; index < text.length; index += 1) {
      const code = text.charCodeAt(index) - 48;
      if (code < 0 || code > 9 || fractionDigits >= minorDigits) return undefined;
      fraction = fraction * 10 + code;
      fractionDigits += 1;
    }
  }
  const minor = whole * 10 ** minorDigits + fraction * 10 ** (minorDigits - fractionDigits);
  return BigInt(negative ? -minor : minor);
}

/**
 * An exact decimal string as minor units with `minorDigits` places. Digits
 * beyond that are allowed only when they are zeros ("0.01000" is 1 fen); any
 * other fraction below a minor unit makes the value unreadable here — use
 * `decimalToMinorHalfUp` where a format has sub-fen digits on purpose.
 */
export function decimalToMinor(text: string, minorDigits = 2): bigint | undefined {
  const fast = fastDecimalToMinor(text, minorDigits);
  if (fast !== undefined) return fast;
  const match = decimalPattern.exec(text);
  if (!match) return undefined;
  const fraction = match[3] ?? '';
  if (fraction.length > minorDigits && !/^0*$/.test(fraction.slice(minorDigits))) return undefined;
  const magnitude = BigInt(match[2]!) * 10n ** BigInt(minorDigits) + BigInt(fraction.slice(0, minorDigits).padEnd(minorDigits, '0') || '0');
  return match[1] === '-' ? -magnitude : magnitude;
}

/**
 * An exact decimal rounded to minor units half-up — on the magnitude, so
 * -0.005 becomes -0.01 just as 0.005 becomes 0.01 and a fee handed back on a
 * refund rounds exactly like the fee charged on a payment.
 */
export function decimalToMinorHalfUp(text: string, minorDigits = 2): bigint | undefined {
  const match = decimalPattern.exec(text);
  if (!match) return undefined;
  const fraction = match[3] ?? '';
  const kept = fraction.slice(0, minorDigits).padEnd(minorDigits, '0');
  let magnitude = BigInt(match[2]!) * 10n ** BigInt(minorDigits) + BigInt(kept || '0');
  const firstDropped = fraction.charCodeAt(minorDigits);
  // Half-up looks only at the first dropped digit: 5 or more rounds away from zero.
  if (firstDropped >= 53 /* '5' */) magnitude += 1n;
  return match[1] === '-' ? -magnitude : magnitude;
}

/** The exact value of a decimal in units of 10^-scale (WeChat's fee column at scale 5), for totals that must not round early. */
export function decimalToScaled(text: string, scale: number): bigint | undefined {
  const match = decimalPattern.exec(text);
  if (!match || (match[3] ?? '').length > scale) return undefined;
  const magnitude = BigInt(match[2]!) * 10n ** BigInt(scale) + BigInt((match[3] ?? '').padEnd(scale, '0') || '0');
  return match[1] === '-' ? -magnitude : magnitude;
}

/** A count written as a decimal ("45.0" in WeChat's summary): it must be a whole number. */
export function decimalToCount(text: string): bigint | undefined {
  const match = /^(\d{1,15})(?:\.0+)?$/.exec(text);
  return match ? BigInt(match[1]!) : undefined;
}

export function absolute(value: bigint): bigint {
  return value < 0n ? -value : value;
}

// ---------------------------------------------------------------------------
// Times

const beijingOffsetMs = 8 * 60 * 60 * 1000;
const dateTimePattern = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/;

/** "yyyy-MM-dd HH:mm:ss" in Beijing time (UTC+8, no daylight saving), as all three channels write it. */
export function parseBeijingDateTime(text: string): Date | undefined {
  const match = dateTimePattern.exec(text);
  if (!match) return undefined;
  const hour = Number(match[4]);
  const minute = Number(match[5]);
  const second = Number(match[6]);
  // A bill's lines share a handful of days: each day is validated once, then only the clock time.
  const dayKey = text.slice(0, 10);
  let dayStartMs = recentDays.get(dayKey);
  if (dayStartMs === undefined) {
    const dayStart = beijingDate(Number(match[1]), Number(match[2]), Number(match[3]));
    if (!dayStart) return undefined;
    dayStartMs = dayStart.getTime();
    if (recentDays.size >= recentDaysMax) recentDays.clear();
    recentDays.set(dayKey, dayStartMs);
  }
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  return new Date(dayStartMs + ((hour * 60 + minute) * 60 + second) * 1000);
}

const recentDays = new Map<string, number>();
const recentDaysMax = 64;

/** A Beijing wall-clock time as an instant; undefined for a date that does not exist (2019-02-30, 24:00:00). */
export function beijingDate(year: number, month: number, day: number, hour = 0, minute = 0, second = 0): Date | undefined {
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return undefined;
  const utcMs = Date.UTC(year, month - 1, day, hour, minute, second);
  const check = new Date(utcMs);
  // Date.UTC rolls 2019-02-30 over into March; a date that does not come back the same does not exist.
  if (check.getUTCFullYear() !== year || check.getUTCMonth() !== month - 1 || check.getUTCDate() !== day) return undefined;
  return new Date(utcMs - beijingOffsetMs);
}

/** The Beijing calendar day [start, end) of a YYYY-MM-DD bill date. */
export function beijingDayOf(billDate: string): { start: Date; end: Date } | undefined {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(billDate);
  const start = match ? beijingDate(Number(match[1]), Number(match[2]), Number(match[3])) : undefined;
  return start && { start, end: new Date(start.getTime() + 24 * 60 * 60 * 1000) };
}

/** "yyyy-MM-dd HH:mm:ss" in Beijing time. */
export function formatBeijingDateTime(date: Date): string {
  return new Date(date.getTime() + beijingOffsetMs).toISOString().slice(0, 19).replace('T', ' ');
}
