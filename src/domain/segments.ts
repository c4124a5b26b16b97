/** GSM 03.38 basic character set (one septet each). */
const GSM7_BASIC = new Set(
  "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà",
);
/** GSM 03.38 extension table: each costs an escape plus the character (two septets). */
const GSM7_EXTENDED = new Set("^{}\\[~]|€\f");

export const GSM7_SINGLE = 160;
export const GSM7_PART = 153;
export const UCS2_SINGLE = 70;
export const UCS2_PART = 67;

export interface SmsEncoding {
  encoding: "GSM-7" | "UCS-2";
  /** Septets for GSM-7, UTF-16 code units for UCS-2. */
  units: number;
  segments: number;
}

/** Septets needed for `text` in GSM-7, or null if a character is outside the GSM-7 alphabet. */
function gsm7Septets(text: string): number | null {
  let septets = 0;
  for (const char of text) {
    if (GSM7_BASIC.has(char)) septets += 1;
    else if (GSM7_EXTENDED.has(char)) septets += 2;
    else return null;
  }
  return septets;
}

/** How an SMS is encoded and into how many segments it splits (concatenated SMS rules). */
export function smsEncoding(text: string): SmsEncoding {
  const septets = gsm7Septets(text);
  if (septets !== null) {
    return { encoding: "GSM-7", units: septets, segments: septets <= GSM7_SINGLE ? 1 : Math.ceil(septets / GSM7_PART) };
  }
  const units = text.length; // UTF-16 code units: an emoji outside the BMP takes two.
  return { encoding: "UCS-2", units, segments: units <= UCS2_SINGLE ? 1 : Math.ceil(units / UCS2_PART) };
}
