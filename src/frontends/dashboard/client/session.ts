/**
 * The API key, kept in this tab's sessionStorage only: never localStorage,
 * never a cookie, never a URL. Closing the tab forgets it.
 */
const STORAGE_KEY = "subaccounts-gateway.dashboard.key";

export function loadKey(): string | null {
  try {
    return sessionStorage.getItem(STORAGE_KEY);
  } catch {
    return null;
  }
}

export function saveKey(key: string): void {
  try {
    sessionStorage.setItem(STORAGE_KEY, key);
  } catch {
    // Storage refused (private mode, quota): the key lives in memory for this page only.
  }
}

export function forgetKey(): void {
  try {
    sessionStorage.removeItem(STORAGE_KEY);
  } catch {
    // Nothing was stored.
  }
}

/** What is wrong with a pasted key, before anything is sent; null when it looks like a main key. */
export function keyProblem(key: string): string | null {
  if (key === "") return "Paste your team's main API key.";
  if (!/^zv_(live|test)_/.test(key)) return "That is not an API key of this gateway: keys start with zv_live_ or zv_test_.";
  if (/^zv_(live|test)_sub_/.test(key)) return "That is a sub-account key. The dashboard shows the whole team: paste the team's main key.";
  if (/\s/.test(key)) return "The key has a space in it: paste it again, without spaces.";
  return null;
}
