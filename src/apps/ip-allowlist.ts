import { BlockList, isIP, isIPv4 } from 'node:net';

/**
 * An app's IP allow-list: single addresses or CIDR blocks, IPv4 and IPv6. An
 * empty list allows every address; otherwise the caller's address must fall
 * inside one entry.
 */
interface AllowlistEntry {
  address: string;
  prefixLength: number | undefined;
  family: 'ipv4' | 'ipv6';
}

export function parseAllowlistEntry(text: string): AllowlistEntry | undefined {
  // Zone ids (fe80::1%eth0) name an interface of one host; they mean nothing in an allow-list.
  if (text.includes('%')) return undefined;
  const [address = '', prefixText, extra] = text.split('/');
  if (extra !== undefined) return undefined;
  const version = isIP(address);
  if (version === 0) return undefined;
  const family = version === 4 ? 'ipv4' : 'ipv6';
  if (prefixText === undefined) return { address, prefixLength: undefined, family };
  if (!/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefixLength = Number(prefixText);
  if (prefixLength > (version === 4 ? 32 : 128)) return undefined;
  return { address, prefixLength, family };
}

export function isAllowlistEntry(text: string): boolean {
  return parseAllowlistEntry(text) !== undefined;
}

/** `::ffff:10.0.0.1` (an IPv4 client on a dual-stack socket) is checked as `10.0.0.1`. */
export function normaliseClientAddress(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return mapped?.[1] && isIPv4(mapped[1]) ? mapped[1] : address;
}

export function isAddressAllowed(allowlist: readonly string[], clientAddress: string): boolean {
  if (allowlist.length === 0) return true;
  const address = normaliseClientAddress(clientAddress);
  const version = isIP(address);
  if (version === 0) return false;
  const blockList = new BlockList();
  for (const text of allowlist) {
    const entry = parseAllowlistEntry(text);
    // Entries were validated when saved; one that no longer parses allows nothing rather than everything.
    if (!entry) continue;
    if (entry.prefixLength === undefined) blockList.addAddress(entry.address, entry.family);
    else blockList.addSubnet(entry.address, entry.prefixLength, entry.family);
  }
  return blockList.check(address, version === 4 ? 'ipv4' : 'ipv6');
}
