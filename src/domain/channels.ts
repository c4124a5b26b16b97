import { invalidRequest } from "./errors.ts";

export const CHANNELS = ["sms", "whatsapp", "telegram", "email"] as const;
export type Channel = (typeof CHANNELS)[number];

const E164 = /^\+[1-9]\d{6,14}$/;
const EMAIL = /^[^\s@"<>()[\]\\,;:]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/;
const CHAT_ID = /^-?\d{1,20}$/;
const EMAIL_MAX_CHARS = 254;

/** Longest text accepted per channel, in characters. */
export const TEXT_LIMITS: Record<Channel, number> = { sms: 1600, whatsapp: 4096, telegram: 4096, email: 100_000 };

/** The channel `to` implies: E.164 gives sms, an email address gives email, a numeric chat id gives telegram. */
export function inferChannel(to: string): Channel | null {
  if (E164.test(to)) return "sms";
  if (to.length <= EMAIL_MAX_CHARS && EMAIL.test(to)) return "email";
  if (CHAT_ID.test(to)) return "telegram";
  return null;
}

function destinationFits(channel: Channel, to: string): boolean {
  switch (channel) {
    case "sms":
    case "whatsapp":
      return E164.test(to);
    case "email":
      return to.length <= EMAIL_MAX_CHARS && EMAIL.test(to);
    case "telegram":
      return CHAT_ID.test(to);
  }
}

const EXPECTED: Record<Channel, string> = {
  sms: "an E.164 phone number such as +14155551234",
  whatsapp: "an E.164 phone number such as +14155551234",
  telegram: "a numeric Telegram chat id such as 123456789",
  email: "an email address such as ana@example.com",
};

/** Resolves the channel and checks `to` and `text` against it, or throws `invalid_request` naming the field. */
export function resolveDestination(to: string, text: string, channel?: Channel | null): Channel {
  const resolved = channel ?? inferChannel(to);
  if (!resolved) {
    throw invalidRequest("`to` must be an E.164 phone number (+14155551234), an email address, or a numeric chat id.", { field: "to" });
  }
  if (!destinationFits(resolved, to)) {
    throw invalidRequest(`For channel ${resolved}, \`to\` must be ${EXPECTED[resolved]}.`, { field: "to", channel: resolved });
  }
  if (text.trim().length === 0) throw invalidRequest("`text` must not be empty.", { field: "text" });
  if (text.length > TEXT_LIMITS[resolved]) {
    throw invalidRequest(`\`text\` is too long for ${resolved}: at most ${TEXT_LIMITS[resolved]} characters.`, {
      field: "text",
      maxLength: TEXT_LIMITS[resolved],
    });
  }
  if (/[\u0000-\u0008\u000B\u000E-\u001F]/.test(text)) {
    throw invalidRequest("`text` must not contain control characters.", { field: "text" });
  }
  return resolved;
}
