/**
 * Money as the API gives it: integer cents (README.md, "Messages and
 * charging"), formatted without floating-point arithmetic so that any amount
 * up to 2^53 cents is shown exactly.
 */
export function formatCents(cents: number, currency = "USD"): string {
  const negative = cents < 0;
  const absolute = Math.abs(Math.trunc(cents));
  const whole = Math.floor(absolute / 100);
  const fraction = String(absolute % 100).padStart(2, "0");
  const grouped = String(whole).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  const symbol = currency === "USD" ? "$" : `${currency} `;
  return `${negative ? "-" : ""}${symbol}${grouped}.${fraction}`;
}

/** How much of a limit is spent, 0 to 100 (a whole number, never above 100). */
export function percentOf(spent: number, limit: number): number {
  if (limit <= 0) return 0;
  return Math.min(100, Math.floor((spent * 100) / limit));
}

/** A timestamp as the time of day, in the browser's locale. */
export function timeOf(iso: string): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleTimeString();
}

/** A timestamp as the time of day when it is today (in the browser's time zone), else with its date too. */
export function whenOf(iso: string, now: Date = new Date()): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  if (date.toDateString() === now.toDateString()) return date.toLocaleTimeString();
  return date.toLocaleString(undefined, { month: "short", day: "numeric", hour: "numeric", minute: "2-digit" });
}
