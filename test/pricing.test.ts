import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DomainError } from "../src/domain/errors.ts";
import { loadPriceTable, quote, type PriceTable } from "../src/domain/pricing.ts";
import { smsEncoding } from "../src/domain/segments.ts";
import { onlyError, startGateway, type TestGateway } from "./helpers/gateway.ts";

const SEND = `mutation Send($input: SendMessageInput!) {
  sendMessage(input: $input) { id to channel cost segments isTestMode status accountId }
}`;

const GRINNING = "\u{1F600}"; // outside the BMP: two UTF-16 code units

describe("smsEncoding: GSM-7 segments", () => {
  it("fits 160 plain characters in one segment and splits 161 into two", () => {
    expect(smsEncoding("a".repeat(160))).toEqual({ encoding: "GSM-7", units: 160, segments: 1 });
    expect(smsEncoding("a".repeat(161))).toEqual({ encoding: "GSM-7", units: 161, segments: 2 });
  });

  it("puts 153 characters in each part of a concatenated message", () => {
    expect(smsEncoding("a".repeat(306)).segments).toBe(2);
    expect(smsEncoding("a".repeat(307)).segments).toBe(3);
    expect(smsEncoding("a".repeat(459)).segments).toBe(3);
    expect(smsEncoding("a".repeat(460)).segments).toBe(4);
  });

  it("keeps GSM-7 for the basic alphabet's accents, symbols and line breaks", () => {
    const text = "¡Hola! Grüße à tous, ¿qué tal? £5 @home_#1\r\nÆØÅ ΔΦΓ ñ§ù";
    // Missing a letter from the table would switch the whole text to UCS-2.
    expect(smsEncoding(text)).toMatchObject({ encoding: "GSM-7", units: [...text].length });
    // 'á' is not in GSM 03.38 (only 'à' is).
    expect(smsEncoding("Olá").encoding).toBe("UCS-2");
  });

  it.each(["€", "{", "}", "[", "]", "^", "~", "|", "\\"])("counts the extension character %s as two septets", (char) => {
    expect(smsEncoding(char.repeat(80))).toEqual({ encoding: "GSM-7", units: 160, segments: 1 });
    expect(smsEncoding(char.repeat(81))).toEqual({ encoding: "GSM-7", units: 162, segments: 2 });
  });

  it("tips a 159-character text into two segments with one extension character", () => {
    expect(smsEncoding("a".repeat(159) + "b").segments).toBe(1);
    expect(smsEncoding("a".repeat(159) + "€")).toEqual({ encoding: "GSM-7", units: 161, segments: 2 });
  });
});

describe("smsEncoding: UCS-2 segments", () => {
  it.each(["ł", "✓", "ç", "д", "中"])("uses UCS-2 for %s: 70 alone, 67 per part", (char) => {
    expect(smsEncoding(char.repeat(70))).toEqual({ encoding: "UCS-2", units: 70, segments: 1 });
    expect(smsEncoding(char.repeat(71))).toEqual({ encoding: "UCS-2", units: 71, segments: 2 });
    expect(smsEncoding(char.repeat(134))).toEqual({ encoding: "UCS-2", units: 134, segments: 2 });
    expect(smsEncoding(char.repeat(135))).toEqual({ encoding: "UCS-2", units: 135, segments: 3 });
  });

  it("switches a whole GSM-7 text to UCS-2 for one character outside the alphabet", () => {
    expect(smsEncoding("a".repeat(100)).segments).toBe(1);
    expect(smsEncoding("a".repeat(100) + "✓")).toEqual({ encoding: "UCS-2", units: 101, segments: 2 });
  });

  it("counts an emoji outside the BMP as two UTF-16 units", () => {
    expect(smsEncoding(GRINNING)).toEqual({ encoding: "UCS-2", units: 2, segments: 1 });
    expect(smsEncoding(GRINNING.repeat(35))).toEqual({ encoding: "UCS-2", units: 70, segments: 1 });
    expect(smsEncoding(GRINNING.repeat(36))).toEqual({ encoding: "UCS-2", units: 72, segments: 2 });
    // 70 characters as a person counts them, but 71 UTF-16 units: two segments.
    const text = "a".repeat(69) + GRINNING;
    expect([...text].length).toBe(70);
    expect(smsEncoding(text)).toEqual({ encoding: "UCS-2", units: 71, segments: 2 });
  });
});

describe("quote with the built-in price table", () => {
  const table = loadPriceTable();

  it("prices SMS per segment by the destination's calling code", () => {
    expect(quote(table, "sms", "+14155550100", "hi")).toMatchObject({ cost: 1n, segments: 1, encoding: "GSM-7", callingCode: "1" });
    expect(quote(table, "sms", "+447700900123", "hi")).toMatchObject({ cost: 4n, segments: 1, callingCode: "44" });
    expect(quote(table, "sms", "+351912345678", "hi")).toMatchObject({ cost: 6n, segments: 1, callingCode: "351" });
    expect(quote(table, "sms", "+447700900123", "a".repeat(161))).toMatchObject({ cost: 8n, segments: 2, encoding: "GSM-7" });
    expect(quote(table, "sms", "+447700900123", "a".repeat(307))).toMatchObject({ cost: 12n, segments: 3 });
    expect(quote(table, "sms", "+351912345678", "ł".repeat(135))).toMatchObject({ cost: 18n, segments: 3, encoding: "UCS-2" });
  });

  it("prices WhatsApp per message, whatever the length", () => {
    expect(quote(table, "whatsapp", "+447700900123", "hi")).toMatchObject({ cost: 5n, segments: 1, encoding: null, callingCode: "44" });
    expect(quote(table, "whatsapp", "+447700900123", "ł".repeat(1000))).toMatchObject({ cost: 5n, segments: 1 });
    expect(quote(table, "whatsapp", "+14155550100", "hi")).toMatchObject({ cost: 1n });
  });

  it("prices Telegram and email flat, whatever the destination and length", () => {
    expect(quote(table, "telegram", "123456789", "hi")).toMatchObject({ cost: 1n, segments: 1, encoding: null, callingCode: null });
    expect(quote(table, "telegram", "-1001234567890", "✓".repeat(4000))).toMatchObject({ cost: 1n, segments: 1 });
    expect(quote(table, "email", "ana@example.com", "x".repeat(50_000))).toMatchObject({ cost: 1n, segments: 1 });
  });

  it.each([
    ["sms", "+99912345678"],
    ["whatsapp", "+99912345678"],
    ["sms", "+80012345678"],
  ] as const)("refuses %s to an unserved destination %s with invalid_request on `to`", (channel, to) => {
    let thrown: unknown;
    try {
      quote(table, channel, to, "hi");
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(DomainError);
    expect(thrown).toMatchObject({ code: "invalid_request", status: 400, details: { field: "to" } });
  });
});

describe("quote: the longest calling-code prefix wins", () => {
  const table: PriceTable = { sms: { "3": 2, "35": 3, "351": 6, "1": 1, "1684": 9 }, whatsapp: { "3": 20, "351": 60 }, telegram: 1, email: 1 };

  it("picks the most specific entry of the table", () => {
    expect(quote(table, "sms", "+351912345678", "hi")).toMatchObject({ cost: 6n, callingCode: "351" });
    expect(quote(table, "sms", "+353861234567", "hi")).toMatchObject({ cost: 3n, callingCode: "35" });
    expect(quote(table, "sms", "+306912345678", "hi")).toMatchObject({ cost: 2n, callingCode: "3" });
    expect(quote(table, "sms", "+16845551234", "hi")).toMatchObject({ cost: 9n, callingCode: "1684" });
    expect(quote(table, "sms", "+14155550100", "hi")).toMatchObject({ cost: 1n, callingCode: "1" });
    expect(quote(table, "whatsapp", "+351912345678", "hi")).toMatchObject({ cost: 60n, callingCode: "351" });
    expect(quote(table, "whatsapp", "+353861234567", "hi")).toMatchObject({ cost: 20n, callingCode: "3" });
  });
});

const BALANCE = `{ balance { balance } }`;

async function balanceOf(gw: TestGateway, key: string): Promise<number> {
  const response = await gw.gql(BALANCE, {}, key);
  expect(response.errors).toBeUndefined();
  return response.data.balance.balance;
}

describe("prices through the HTTP API", () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway();
  });
  afterAll(async () => gw.close());

  it.each([
    { name: "a one-segment GSM-7 SMS", input: { to: "+14155550100", text: "Your code is 123456" }, channel: "SMS", segments: 1, cost: 1 },
    { name: "a 160-character SMS", input: { to: "+447700900123", text: "a".repeat(160) }, channel: "SMS", segments: 1, cost: 4 },
    { name: "a two-segment GSM-7 SMS", input: { to: "+447700900123", text: "x".repeat(200) }, channel: "SMS", segments: 2, cost: 8 },
    { name: "a three-segment GSM-7 SMS", input: { to: "+14155550100", text: "y".repeat(307) }, channel: "SMS", segments: 3, cost: 3 },
    { name: "an SMS with extension characters", input: { to: "+447700900123", text: "€".repeat(81) }, channel: "SMS", segments: 2, cost: 8 },
    { name: "a unicode SMS", input: { to: "+351912345678", text: "Olá, tudo bem? ✓ ".repeat(5) }, channel: "SMS", segments: 2, cost: 12 },
    { name: "an emoji SMS", input: { to: "+447700900123", text: "a".repeat(69) + GRINNING }, channel: "SMS", segments: 2, cost: 8 },
    { name: "an email inferred from the address", input: { to: "ana@example.com", text: "x".repeat(5000) }, channel: "EMAIL", segments: 1, cost: 1 },
    { name: "a Telegram message inferred from a chat id", input: { to: "123456789", text: "✓".repeat(300) }, channel: "TELEGRAM", segments: 1, cost: 1 },
    { name: "a WhatsApp message given explicitly", input: { to: "+447700900123", text: "x".repeat(500), channel: "WHATSAPP" }, channel: "WHATSAPP", segments: 1, cost: 5 },
  ])("charges $name exactly its price ($cost cents)", async ({ input, channel, segments, cost }) => {
    const { teamId, mainAccountId, mainKey } = await gw.createTeam({ balance: 1000 });
    const sent = await gw.gql(SEND, { input }, mainKey);
    expect(sent.status).toBe(200);
    expect(sent.errors).toBeUndefined();
    expect(sent.data.sendMessage).toMatchObject({ to: input.to, channel, segments, cost, isTestMode: false, accountId: mainAccountId });
    expect(await balanceOf(gw, mainKey)).toBe(1000 - cost);
    const ledger = await gw.db.prisma.ledgerEntry.findMany({ where: { teamId, kind: "charge" } });
    expect(ledger.map((entry) => [entry.messageId, entry.amount])).toEqual([[sent.data.sendMessage.id, BigInt(cost)]]);
  });

  it("refuses an unserved destination with 400 invalid_request and changes nothing", async () => {
    const { teamId, mainKey } = await gw.createTeam({ balance: 1000 });
    for (const input of [
      { to: "+99912345678", text: "hello" },
      { to: "+99912345678", text: "hello", channel: "WHATSAPP" },
    ]) {
      const refused = await gw.gql(SEND, { input }, mainKey);
      expect(refused.status).toBe(400);
      expect(refused.data).toBeNull();
      const error = onlyError(refused);
      expect(error.extensions.code).toBe("invalid_request");
      expect(error.extensions.details).toMatchObject({ field: "to" });
    }
    expect(await balanceOf(gw, mainKey)).toBe(1000);
    expect(await gw.db.prisma.message.count({ where: { teamId } })).toBe(0);
    expect(await gw.db.prisma.ledgerEntry.count({ where: { teamId, kind: "charge" } })).toBe(0);
  });
});

describe("PRICES_FILE replaces the built-in price table", () => {
  let gw: TestGateway;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "prices-"));
    const file = path.join(dir, "prices.json");
    writeFileSync(file, JSON.stringify({ sms: { "1": 3, "44": 10 }, whatsapp: { "44": 20 }, telegram: 2, email: 7 }));
    gw = await startGateway({ env: { PRICES_FILE: file } });
  });
  afterAll(async () => {
    await gw.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("charges the file's prices", async () => {
    const { mainKey } = await gw.createTeam({ balance: 1000 });
    const sends = [
      [{ to: "+14155550100", text: "hi" }, 3],
      [{ to: "+447700900123", text: "x".repeat(200) }, 20],
      [{ to: "+447700900123", text: "hi", channel: "WHATSAPP" }, 20],
      [{ to: "123456789", text: "hi" }, 2],
      [{ to: "ana@example.com", text: "hi" }, 7],
    ] as const;
    let expected = 1000;
    for (const [input, cost] of sends) {
      const sent = await gw.gql(SEND, { input }, mainKey);
      expect(sent.errors).toBeUndefined();
      expect(sent.data.sendMessage.cost).toBe(cost);
      expected -= cost;
      expect(await balanceOf(gw, mainKey)).toBe(expected);
    }
  });

  it("refuses a destination the built-in table serves but the file does not", async () => {
    const { teamId, mainKey } = await gw.createTeam({ balance: 1000 });
    const refused = await gw.gql(SEND, { input: { to: "+351912345678", text: "hi" } }, mainKey);
    expect(refused.status).toBe(400);
    expect(onlyError(refused).extensions).toMatchObject({ code: "invalid_request", details: { field: "to" } });
    expect(await balanceOf(gw, mainKey)).toBe(1000);
    expect(await gw.db.prisma.message.count({ where: { teamId } })).toBe(0);
  });
});
