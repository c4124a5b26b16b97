import { isIPv4, isIPv6 } from "node:net";

/**
 * Which IP addresses a webhook may not reach in production (README.md,
 * "Webhooks", safety): private, loopback, link-local, unspecified, and the
 * other ranges that never lead to a public server, in IPv4, in IPv6, and as
 * IPv4 embedded in IPv6 (IPv4-mapped, NAT64, 6to4).
 */

type Range = { bytes: number[]; bits: number; name: string };

const v4 = (cidr: string, name: string): Range => {
  const [address, bits] = cidr.split("/");
  return { bytes: address!.split(".").map(Number), bits: Number(bits), name };
};

const BLOCKED_V4: Range[] = [
  v4("0.0.0.0/8", "unspecified"),
  v4("10.0.0.0/8", "private"),
  v4("100.64.0.0/10", "shared (carrier-grade NAT)"),
  v4("127.0.0.0/8", "loopback"),
  v4("169.254.0.0/16", "link-local"),
  v4("172.16.0.0/12", "private"),
  v4("192.0.0.0/24", "IETF protocol assignments"),
  v4("192.168.0.0/16", "private"),
  v4("198.18.0.0/15", "benchmarking"),
  v4("224.0.0.0/4", "multicast"),
  v4("240.0.0.0/4", "reserved"),
];

const BLOCKED_V6: Range[] = [
  { bytes: new Array(16).fill(0), bits: 128, name: "unspecified" },
  { bytes: [...new Array(15).fill(0), 1], bits: 128, name: "loopback" },
  { bytes: [0xfc], bits: 7, name: "unique local (private)" },
  { bytes: [0xfe, 0x80], bits: 10, name: "link-local" },
  { bytes: [0xfe, 0xc0], bits: 10, name: "site-local" },
  { bytes: [0xff], bits: 8, name: "multicast" },
];

function inRange(bytes: number[], range: Range): boolean {
  for (let bit = 0; bit < range.bits; bit += 8) {
    const width = Math.min(8, range.bits - bit);
    const mask = (0xff << (8 - width)) & 0xff;
    if (((bytes[bit / 8] ?? 0) & mask) !== ((range.bytes[bit / 8] ?? 0) & mask)) return false;
  }
  return true;
}

/** `a.b.c.d` as the two IPv6 groups that hold it. */
function dottedAsGroups(dotted: string): string {
  const [a, b, c, d] = dotted.split(".").map(Number);
  return `${((a! << 8) | b!).toString(16)}:${((c! << 8) | d!).toString(16)}`;
}

/** The 16 bytes of an IPv6 address in any textual form (with a zone or an embedded dotted quad). */
export function ipv6Bytes(address: string): number[] {
  let hexText = address.split("%")[0]!;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(hexText);
  if (dotted) hexText = hexText.slice(0, -dotted[1]!.length) + dottedAsGroups(dotted[1]!);
  const [head, tail] = hexText.includes("::") ? hexText.split("::") : [hexText, undefined];
  const groups = (part: string | undefined) => (part ? part.split(":").filter((g) => g !== "") : []);
  const left = groups(head);
  const right = groups(tail);
  const middle = tail === undefined ? [] : new Array(8 - left.length - right.length).fill("0");
  return [...left, ...middle, ...right].flatMap((group) => {
    const value = parseInt(group, 16);
    return [value >> 8, value & 0xff];
  });
}

/**
 * An IPv4 address carried inside an IPv6 one, if any: IPv4-mapped (::ffff:a.b.c.d),
 * IPv4-compatible (::a.b.c.d), NAT64 (64:ff9b::/96), 6to4 (2002::/16).
 */
function embeddedIpv4(bytes: number[]): number[] | null {
  const zeros = (from: number, to: number) => bytes.slice(from, to).every((b) => b === 0);
  if (zeros(0, 10) && ((bytes[10] === 0xff && bytes[11] === 0xff) || zeros(10, 12))) return bytes.slice(12);
  if (bytes[0] === 0x00 && bytes[1] === 0x64 && bytes[2] === 0xff && bytes[3] === 0x9b && zeros(4, 12)) return bytes.slice(12);
  if (bytes[0] === 0x20 && bytes[1] === 0x02) return bytes.slice(2, 6);
  return null;
}

/**
 * Why `address` must not be reached (e.g. "loopback"), or null for a public
 * address. Anything that is not an IP address at all is refused too.
 */
export function blockedAddressReason(address: string): string | null {
  if (isIPv4(address)) {
    const bytes = address.split(".").map(Number);
    return BLOCKED_V4.find((range) => inRange(bytes, range))?.name ?? null;
  }
  if (!isIPv6(address)) return "not an IP address";
  const bytes = ipv6Bytes(address);
  const reason = BLOCKED_V6.find((range) => inRange(bytes, range))?.name;
  if (reason) return reason;
  const embedded = embeddedIpv4(bytes);
  const embeddedReason = embedded ? BLOCKED_V4.find((range) => inRange(embedded, range))?.name : undefined;
  return embeddedReason ? `${embeddedReason} (IPv4 inside IPv6)` : null;
}
