import { crc32 } from 'node:zlib';
import iconv from 'iconv-lite';
import yauzl from 'yauzl';
import { BillFormatError, billLimits } from '../bill.types.js';

/**
 * Reading a bill zip without unpacking it: yauzl reads the central directory
 * from the file on disk and streams each entry, so a large bill never sits in
 * memory. Alipay names its entries in GBK without setting the UTF-8 flag, so
 * names are decoded here (UTF-8 only when the flag says so). yauzl does not
 * check CRC-32; the stream below does, because a bill must be exactly what the
 * channel wrote.
 */

const utf8NameFlag = 0x800;
const chunkBytes = 256 * 1024;

export interface BillZipEntry {
  name: string;
  uncompressedSize: number;
  entry: yauzl.Entry;
}

export interface BillZip {
  entries: BillZipEntry[];
  /** The entry's bytes as a stream, checked against the CRC-32 of the central directory at the end. */
  read(entry: BillZipEntry): AsyncIterable<Uint8Array>;
  close(): void;
}

function entryName(entry: yauzl.Entry): string {
  const raw = entry.fileNameRaw;
  return (entry.generalPurposeBitFlag & utf8NameFlag) !== 0 ? raw.toString('utf8') : iconv.decode(raw, 'gbk');
}

function malformed(file: string, error: unknown): BillFormatError {
  return new BillFormatError('malformed', file, undefined, `not a readable zip (${error instanceof Error ? error.message : String(error)})`);
}

async function* checkedStream(zip: yauzl.ZipFile, entry: BillZipEntry, file: string): AsyncGenerator<Uint8Array, void, undefined> {
  let stream: AsyncIterable<Buffer>;
  try {
    stream = await zip.openReadStreamPromise(entry.entry);
  } catch (error) {
    throw malformed(file, error);
  }
  let checksum = 0;
  // Inflate hands out 16 KiB pieces; gathering them into larger chunks saves the parser per-chunk work.
  let gathered: Buffer[] = [];
  let gatheredBytes = 0;
  try {
    for await (const chunk of stream) {
      checksum = crc32(chunk, checksum);
      gathered.push(chunk);
      gatheredBytes += chunk.length;
      if (gatheredBytes >= chunkBytes) {
        yield Buffer.concat(gathered, gatheredBytes);
        gathered = [];
        gatheredBytes = 0;
      }
    }
    if (gatheredBytes > 0) yield Buffer.concat(gathered, gatheredBytes);
  } catch (error) {
    if (error instanceof BillFormatError) throw error;
    throw malformed(file, error);
  }
  if (checksum >>> 0 !== entry.entry.crc32 >>> 0) {
    throw new BillFormatError('inconsistent', `${file}!${entry.name}`, undefined, 'the entry does not match its CRC-32');
  }
}

export async function openBillZip(path: string, file: string): Promise<BillZip> {
  let zip: yauzl.ZipFile;
  try {
    zip = await yauzl.openPromise(path, { autoClose: false, decodeStrings: false, validateEntrySizes: true });
  } catch (error) {
    throw malformed(file, error);
  }
  const entries: BillZipEntry[] = [];
  try {
    for await (const entry of zip.eachEntry()) {
      if (entry.uncompressedSize > billLimits.fileBytesMax) throw new BillFormatError('unsupported', file, undefined, 'an entry larger than the bill size limit');
      entries.push({ name: entryName(entry), uncompressedSize: entry.uncompressedSize, entry });
    }
  } catch (error) {
    zip.close();
    if (error instanceof BillFormatError) throw error;
    throw malformed(file, error);
  }
  return { entries, read: (entry) => checkedStream(zip, entry, file), close: () => zip.close() };
}

/** Whether a file starts with a zip's local header signature ("PK\x03\x04"). */
export function looksLikeZip(firstBytes: Uint8Array): boolean {
  return firstBytes[0] === 0x50 && firstBytes[1] === 0x4b && firstBytes[2] === 0x03 && firstBytes[3] === 0x04;
}
