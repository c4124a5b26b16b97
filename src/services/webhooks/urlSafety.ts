import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { z } from "zod";
import { blockedAddressReason } from "../../domain/addresses.ts";
import { invalidRequest } from "../../domain/errors.ts";
import { storableString } from "../../domain/validation.ts";

/**
 * Where a webhook may be sent (README.md, "Webhooks", safety). In production a
 * URL must be https, and unless WEBHOOK_ALLOW_PRIVATE_URLS allows it, it must
 * not lead to a private, loopback or link-local address
 * (src/domain/addresses.ts): checked when the URL is set, and again at every
 * delivery after resolving its name, when the connection is made to exactly the
 * address that was checked (a name that resolves elsewhere the second time,
 * DNS rebinding, gains nothing).
 */

export const WEBHOOK_URL_MAX_CHARS = 2048;

/** The shape of a webhook URL: absolute http(s), a host, no credentials. Also the REST body's rule. */
export const webhookUrlSchema = storableString()
  .transform((value) => value.trim())
  .pipe(z.string().min(1, "must not be empty").max(WEBHOOK_URL_MAX_CHARS, `must be at most ${WEBHOOK_URL_MAX_CHARS} characters`))
  .superRefine((value, ctx) => {
    const problem = urlShapeProblem(value);
    if (problem) ctx.addIssue({ code: z.ZodIssueCode.custom, message: problem });
  });

function urlShapeProblem(value: string): string | null {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return "must be an absolute URL such as https://example.com/webhooks";
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") return "must be an http or https URL";
  if (url.hostname === "") return "must name a host";
  if (url.username !== "" || url.password !== "") return "must not contain a user name or password (the signature authenticates deliveries)";
  return null;
}

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Resolves a host name to its addresses (the system's resolver; tests inject their own). */
export type Resolver = (hostname: string) => Promise<ResolvedAddress[]>;

export const systemResolver: Resolver = async (hostname) =>
  (await lookup(hostname, { all: true, verbatim: true })).map((entry) => ({ address: entry.address, family: entry.family === 6 ? 6 : 4 }));

export interface AddressPolicy {
  allowPrivate: boolean;
  resolve: Resolver;
}

export interface UrlPolicy extends AddressPolicy {
  requireHttps: boolean;
}

/** Why a delivery was not even attempted: the URL leads where webhooks may not go, or nowhere. */
export class UnsafeTarget extends Error {
  constructor(message: string, readonly kind: "refused_address" | "unresolvable") {
    super(message);
  }
}

/** The URL's host without IPv6 brackets. */
function hostOf(url: URL): string {
  return url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
}

function refuseIfBlocked(host: string, address: string, policy: AddressPolicy): void {
  if (policy.allowPrivate) return;
  const reason = blockedAddressReason(address);
  if (!reason) return;
  const where = host === address ? address : `${host} resolves to ${address},`;
  throw new UnsafeTarget(`${where} a ${reason} address: webhooks are not delivered there (WEBHOOK_ALLOW_PRIVATE_URLS).`, "refused_address");
}

/**
 * The one address a delivery connects to: the URL's IP, or the first address
 * its name resolves to now. When private addresses are not allowed, every
 * address the name resolves to must be public (a name with one private address
 * is refused whole).
 */
export async function resolveTarget(url: URL, policy: AddressPolicy): Promise<ResolvedAddress> {
  const host = hostOf(url);
  const family = isIP(host);
  if (family !== 0) {
    refuseIfBlocked(host, host, policy);
    return { address: host, family: family === 6 ? 6 : 4 };
  }
  let addresses: ResolvedAddress[];
  try {
    addresses = await policy.resolve(host);
  } catch {
    addresses = [];
  }
  if (addresses.length === 0) throw new UnsafeTarget(`${host} does not resolve to any address.`, "unresolvable");
  for (const entry of addresses) refuseIfBlocked(host, entry.address, policy);
  return addresses[0]!;
}

/**
 * The check of a URL being set on an endpoint (`field` names it in the error):
 * https in production; with private addresses disallowed, a host that resolves,
 * and only to public addresses. Throws `invalid_request`.
 */
export async function checkEndpointUrl(value: string, policy: UrlPolicy, field: string): Promise<void> {
  const url = new URL(value);
  const refuse = (message: string) => {
    throw invalidRequest(`Invalid ${field}: ${message}`, { field, issues: [{ field, message }] });
  };
  if (policy.requireHttps && url.protocol !== "https:") refuse("must be an https URL in production");
  if (policy.allowPrivate) return;
  try {
    await resolveTarget(url, policy);
  } catch (error) {
    if (error instanceof UnsafeTarget) refuse(error.message);
    throw error;
  }
}
