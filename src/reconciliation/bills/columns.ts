import { BillFormatError } from '../bill.types.js';

/**
 * Columns are found by their header names, never by position: channels add
 * and reorder columns over the years, and a bill read by position would then
 * be read wrongly without a word. Names are compared after trimming and after
 * folding ASCII parentheses into the full-width ones Alipay writes.
 */
export function normalizeHeaderName(name: string): string {
  return name.trim().replace(/^`/, '').replaceAll('(', '（').replaceAll(')', '）');
}

export class ColumnMap<Name extends string> {
  private constructor(
    private readonly indexes: Map<Name, number>,
    readonly width: number,
  ) {}

  /**
   * Maps the header row; every `required` column must be present exactly
   * once, `optional` ones at most once.
   */
  static from<Name extends string>(
    headerCells: string[],
    columns: { required: Record<string, Name>; optional?: Record<string, Name> },
    where: { file: string; lineNumber: number },
  ): ColumnMap<Name> {
    const positions = new Map<string, number>();
    headerCells.forEach((cell, index) => {
      const name = normalizeHeaderName(cell);
      if (name === '') return;
      if (positions.has(name)) throw new BillFormatError('malformed', where.file, where.lineNumber, `the column ${name} appears twice`);
      positions.set(name, index);
    });
    const indexes = new Map<Name, number>();
    for (const [header, key] of Object.entries(columns.required)) {
      const index = positions.get(normalizeHeaderName(header));
      if (index === undefined) throw new BillFormatError('malformed', where.file, where.lineNumber, `the header has no column ${header}`);
      indexes.set(key, index);
    }
    for (const [header, key] of Object.entries(columns.optional ?? {})) {
      const index = positions.get(normalizeHeaderName(header));
      if (index !== undefined) indexes.set(key, index);
    }
    return new ColumnMap(indexes, headerCells.length);
  }

  has(key: Name): boolean {
    return this.indexes.has(key);
  }

  /** The trimmed cell, '' for an optional column the file does not have. */
  cell(cells: string[], key: Name): string {
    const index = this.indexes.get(key);
    return index === undefined ? '' : (cells[index] ?? '').trim();
  }
}
