import { readFileSync } from "node:fs";
import { z } from "zod";
import { invalidRequest } from "./errors.ts";
import { smsEncoding } from "./segments.ts";
import type { Channel } from "./channels.ts";

const centsPerUnit = z.number().int().min(1).max(1_000_000);
const byCallingCode = z.record(z.string().regex(/^[1-9]\d{0,3}$/, "calling codes are 1 to 4 digits"), centsPerUnit);

const priceTableSchema = z.object({
  description: z.string().optional(),
  sms: byCallingCode,
  whatsapp: byCallingCode,
  telegram: centsPerUnit,
  email: centsPerUnit,
});

export type PriceTable = z.infer<typeof priceTableSchema>;

export function loadPriceTable(file: string | URL = new URL("./prices.json", import.meta.url)): PriceTable {
  const parsed = priceTableSchema.safeParse(JSON.parse(readFileSync(file, "utf8")));
  if (!parsed.success) throw new Error(`Invalid price table ${String(file)}: ${parsed.error.issues[0]?.message}`);
  return parsed.data;
}

export interface Quote {
  /** Cents. */
  cost: bigint;
  segments: number;
  encoding: "GSM-7" | "UCS-2" | null;
  callingCode: string | null;
}

const MAX_CALLING_CODE_DIGITS = 4;

/** The table's longest calling-code prefix of an E.164 number, or null. */
function matchCallingCode(e164: string, table: Record<string, number>): string | null {
  const digits = e164.slice(1);
  for (let length = Math.min(MAX_CALLING_CODE_DIGITS, digits.length); length >= 1; length -= 1) {
    const prefix = digits.slice(0, length);
    if (table[prefix] !== undefined) return prefix;
  }
  return null;
}

export function quote(table: PriceTable, channel: Channel, to: string, text: string): Quote {
  if (channel === "telegram" || channel === "email") {
    return { cost: BigInt(table[channel]), segments: 1, encoding: null, callingCode: null };
  }
  const prices = table[channel];
  const callingCode = matchCallingCode(to, prices);
  if (callingCode === null) {
    throw invalidRequest(`No ${channel} price for destination ${to}: that country is not served.`, { field: "to", channel });
  }
  const unit = BigInt(prices[callingCode]!);
  if (channel === "whatsapp") return { cost: unit, segments: 1, encoding: null, callingCode };
  const sms = smsEncoding(text);
  return { cost: unit * BigInt(sms.segments), segments: sms.segments, encoding: sms.encoding, callingCode };
}
