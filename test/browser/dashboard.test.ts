import type { Page, WebSocketRoute } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { SEND } from "../helpers/storm.ts";
import { describeInBrowser, foreignRequests, openBrowser, screenshot, startRestartableGateway, type Browser, type RestartableGateway } from "./browser.ts";

/**
 * README.md, "Live spend dashboard", in Chromium: given a main key it shows
 * the team, its sub-accounts' spend against their credit limits and budgets,
 * the alerts and 30 days of spend; a charge made through the API reaches the
 * page within a second; an alert appears when a charge crosses a threshold;
 * after the gateway restarts or the socket is cut, the page resumes where it
 * stopped, every charge and alert made meanwhile shown once. Nothing is
 * loaded from elsewhere, the key stays in the tab's sessionStorage, and the
 * page is usable by keyboard and on a phone.
 */
const CREATE = `mutation($input: CreateSubAccountInput!) { createSubAccount(input: $input) { apiKey subAccount { id } } }`;
const UPDATE = `mutation($id: ID!, $input: UpdateSubAccountInput!) { updateSubAccount(id: $id, input: $input) { id budget { amount spent remaining period resetsAt } } }`;
/** README.md: a charge appears on the page within this long of the API's answer. */
const CHARGE_TO_DOM_MS = 1000;
const SAMPLES = 5;

interface Account {
  id: string;
  key: string;
}

const DAY_MS = 86_400_000;

async function gql(url: string, query: string, variables: Record<string, unknown>, key: string) {
  const response = await fetch(`${url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
    body: JSON.stringify({ query, variables }),
  });
  return (await response.json()) as { data: any; errors?: unknown[] };
}

function send(url: string, account: Account, text = "Your code is 1234") {
  return gql(url, SEND, { input: { to: "+447700900123", text } }, account.key);
}

/** Cents as the page writes them: $1,234.56. */
const dollars = (cents: number) => `$${(cents / 100).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
const escaped = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
const utcDay = (at: Date) => at.toISOString().slice(0, 10);

/** What the page writes for a sub-account's spend against its credit limit, from the API's figures. */
function creditText(account: { totalSpent: number; creditLimit: number | null }): string {
  if (account.creditLimit === null) return `${dollars(account.totalSpent)} spent · no limit`;
  const percent = Math.min(100, Math.floor((account.totalSpent * 100) / account.creditLimit));
  return `${dollars(account.totalSpent)} of ${dollars(account.creditLimit)} (${percent}%)${account.totalSpent >= account.creditLimit ? " · limit reached" : ""}`;
}

/** What the API says now: the team, every sub-account, the last 30 days' spend per day, and the latest alerts. */
const FIGURES = `query($from: DateTime!, $to: DateTime!) {
  viewer { team { balance lowBalance lowBalanceThreshold } }
  subAccounts(first: 100) { edges { node { id name totalSpent creditLimit chargeSequence budget { amount spent remaining period resetsAt } } } }
  spendReport(from: $from, to: $to, groupBy: [DAY]) { rows { period messages amount } }
  spendAlerts(first: 50) { edges { node { sequence kind subAccountId thresholdPercent } } }
}`;

async function apiFigures(url: string, key: string) {
  const now = Date.now();
  const today = Date.UTC(new Date(now).getUTCFullYear(), new Date(now).getUTCMonth(), new Date(now).getUTCDate());
  const { data } = await gql(url, FIGURES, { from: new Date(today - 29 * DAY_MS).toISOString(), to: new Date(today + DAY_MS).toISOString() }, key);
  const rows = data.spendReport.rows as { period: string; messages: number; amount: number }[];
  return {
    team: data.viewer.team as { balance: number; lowBalance: boolean; lowBalanceThreshold: number | null },
    subAccounts: data.subAccounts.edges.map((edge: any) => edge.node) as {
      id: string;
      name: string;
      totalSpent: number;
      creditLimit: number | null;
      chargeSequence: number;
      budget: { amount: number; spent: number; remaining: number; resetsAt: string } | null;
    }[],
    days: rows,
    today: rows.find((row) => row.period === utcDay(new Date(today)))?.amount ?? 0,
    alerts: data.spendAlerts.edges.map((edge: any) => edge.node) as { sequence: number; kind: string; subAccountId: string | null }[],
  };
}

/** What the page shows for a sub-account's spend. */
const spentText = (page: Page, account: { id: string }) => page.locator(`li[data-id="${account.id}"] .account-spent`).innerText();
/** Today's bar of the 30-day chart: its amount in cents, as the page drew it. */
const todayBar = (page: Page) => page.locator("#chart-bars .chart-bar.is-today").getAttribute("data-amount");

/** Resolves with the time (ms since the epoch) at which the account's spend text next changes on the page. */
async function watchSpent(page: Page, account: Account): Promise<() => Promise<number>> {
  await page.evaluate((id) => {
    const element = document.querySelector(`li[data-id="${id}"] .account-spent`)!;
    const changes: number[] = [];
    (window as unknown as { __changes: number[] }).__changes = changes;
    new MutationObserver(() => changes.push(Date.now())).observe(element, { childList: true, characterData: true, subtree: true });
  }, account.id);
  return async () => {
    await page.waitForFunction(() => (window as unknown as { __changes: number[] }).__changes.length > 0, undefined, { timeout: 5_000 });
    return page.evaluate(() => (window as unknown as { __changes: number[] }).__changes[0]!);
  };
}

/** WCAG contrast ratio of an element's text against the first opaque background behind it. */
async function contrastOf(page: Page, selector: string): Promise<number> {
  return page.locator(selector).first().evaluate((element) => {
    const rgb = (value: string) => (value.match(/[\d.]+/g) ?? []).map(Number);
    const luminance = ([r, g, b]: number[]) => {
      const channel = (c: number) => ((c /= 255) <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
      return 0.2126 * channel(r!) + 0.7152 * channel(g!) + 0.0722 * channel(b!);
    };
    let background: number[] = [255, 255, 255];
    for (let node: Element | null = element; node; node = node.parentElement) {
      const color = rgb(getComputedStyle(node).backgroundColor);
      if (color.length === 3 || (color.length === 4 && color[3] === 1)) {
        background = color.slice(0, 3);
        break;
      }
    }
    const [lighter, darker] = [luminance(rgb(getComputedStyle(element).color)), luminance(background)].sort((a, b) => b - a);
    return (lighter! + 0.05) / (darker! + 0.05);
  });
}

describeInBrowser("the live spend dashboard in Chromium", () => {
  let gw: RestartableGateway;
  let browser: Browser;
  let mainKey: string;
  let accounts: Account[];
  /** The gateway's clock runs this many days behind while the history is made, so that the chart has past days. */
  let daysAgo = 0;
  /** Per charge: ms from the API's answer to the page's change (negative: the page changed first), and from the request. */
  const latencies: { fromAnswer: number; fromRequest: number }[] = [];

  beforeAll(async () => {
    gw = await startRestartableGateway({ now: () => new Date(Date.now() - daysAgo * DAY_MS) });
    const team = await gw.gateway.services.teams.createTeam({ name: "Acme Messaging", balance: 1_250_000 });
    mainKey = team.apiKey;
    accounts = [];
    for (const [name, creditLimit] of [
      ["Client ABC", 2_000],
      ["Northwind Traders", 500],
      ["Globex (no limit)", null],
      ["Umbrella Corp", 200],
      ["Initech", 100],
    ] as const) {
      const created = await gql(gw.url, CREATE, { input: { name, creditLimit } }, mainKey);
      accounts.push({ id: created.data.createSubAccount.subAccount.id, key: created.data.createSubAccount.apiKey });
    }
    // Some history, so the bars start somewhere: 4 cents a message over the last days (Client ABC's over 12 days,
    // Northwind's over 8...); Umbrella near its limit, Initech at it (both raised alerts); Globex's one message today.
    const history = [
      [0, 120, 12],
      [1, 40, 8],
      [2, 1, 1],
      [3, 43, 5],
      [4, 25, 1],
    ] as const;
    for (let day = 11; day >= 0; day -= 1) {
      daysAgo = day;
      for (const [index, messages, days] of history) {
        const share = day >= days ? 0 : Math.floor(messages / days) + (day < messages % days ? 1 : 0);
        for (let i = 0; i < share; i += 1) await send(gw.url, accounts[index]!);
      }
    }
    daysAgo = 0;
    browser = await openBrowser();
  });
  afterAll(async () => {
    if (latencies.length > 0) {
      const summary = (values: number[]) => {
        const sorted = [...values].sort((a, b) => a - b);
        return `median ${sorted[Math.floor(sorted.length / 2)]} ms, max ${sorted.at(-1)} ms`;
      };
      console.log(
        `charge-to-DOM over ${latencies.length} charges: from the API's answer ${summary(latencies.map((l) => l.fromAnswer))} ` +
          `(negative: the page changed before the answer arrived); from the request ${summary(latencies.map((l) => l.fromRequest))}`,
      );
    }
    await browser?.close();
    await gw?.close();
  });

  it("refuses a sub-account key with a message, then given the main key (keyboard only) shows the team, every sub-account, the alerts and 30 days of spend", async () => {
    const { page } = browser;
    await page.goto(`${gw.url}/dashboard`);
    await page.keyboard.press("Tab"); // the skip link first
    await page.keyboard.press("Tab");
    expect(await page.evaluate(() => document.activeElement?.id)).toBe("api-key");
    await page.keyboard.insertText(accounts[0]!.key);
    await page.keyboard.press("Enter");
    await expect.poll(() => page.locator("#key-error").innerText()).toMatch(/sub-account key/);
    // A key of the right shape that the gateway does not know: its answer, and the form again.
    await page.getByLabel("Main-account API key").fill(`zv_live_${"x".repeat(40)}`);
    await page.keyboard.press("Enter");
    await expect.poll(() => page.locator("#key-error").innerText(), { timeout: 10_000 }).toMatch(/unknown|revoked|not valid|does not exist/i);
    expect(await page.locator("#key-error").isVisible()).toBe(true);
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    await page.getByLabel("Main-account API key").fill(mainKey);
    await page.keyboard.press("Enter");
    await expect.poll(() => page.locator("#team-name").innerText(), { timeout: 10_000 }).toBe("Acme Messaging");
    const balance = 1_250_000 - (120 + 40 + 1 + 43 + 25) * 4;
    expect(await page.locator("#team-balance").innerText()).toBe(dollars(balance));
    expect(await page.locator("#accounts .account-name").allInnerTexts()).toEqual(["Client ABC", "Northwind Traders", "Globex (no limit)", "Umbrella Corp", "Initech"]);
    expect(await spentText(page, accounts[0]!)).toBe("$4.80 of $20.00 (24%)");
    expect(await spentText(page, accounts[1]!)).toBe("$1.60 of $5.00 (32%)");
    expect(await spentText(page, accounts[2]!)).toBe("$0.04 spent · no limit");
    expect(await spentText(page, accounts[3]!)).toBe("$1.72 of $2.00 (86%)");
    expect(await spentText(page, accounts[4]!)).toBe("$1.00 of $1.00 (100%) · limit reached");
    expect(await page.locator(`li[data-id="${accounts[0]!.id}"] .budget-spent`).innerText()).toBe("No budget");
    expect(await page.locator("li.account.is-near").count()).toBe(1);
    expect(await page.locator("li.account.is-full").getAttribute("data-id")).toBe(accounts[4]!.id);
    expect(await page.getByRole("progressbar", { name: "Client ABC: credit limit used" }).getAttribute("aria-valuenow")).toBe("24");
    // The alerts the history raised, newest first: Initech at 100% and 80% of its limit, Umbrella at 80%.
    await expect.poll(() => page.locator("#alerts li").allInnerTexts()).toEqual([
      expect.stringMatching(/Credit limit Initech reached 100% of its credit limit: \$1\.00 spent \(the mark is \$1\.00\)\.$/),
      expect.stringMatching(/Credit limit Initech reached 80% of its credit limit: \$0\.80 spent \(the mark is \$0\.80\)\.$/),
      expect.stringMatching(/Credit limit Umbrella Corp reached 80% of its credit limit: \$1\.60 spent \(the mark is \$1\.60\)\.$/),
    ]);
    // 30 days of spend: today's as the API reports it.
    const api = await apiFigures(gw.url, mainKey);
    await expect.poll(() => page.locator("#chart-summary").innerText()).toMatch(new RegExp(`^Today: ${escaped(dollars(api.today))} · last 30 days: ${escaped(dollars(229 * 4))}`));
    await expect.poll(() => page.locator("#connection").getAttribute("data-state"), { timeout: 10_000 }).toBe("live");
  });

  it(`shows a charge made through the API within ${CHARGE_TO_DOM_MS} ms of the API's answer, in the bar and the live feed`, async () => {
    const { page } = browser;
    const account = accounts[1]!;
    for (let sample = 0; sample < SAMPLES; sample += 1) {
      const changed = await watchSpent(page, account);
      const sentAt = Date.now();
      const sent = await send(gw.url, account, `sample ${sample}`);
      const answeredAt = Date.now();
      expect(sent.errors).toBeUndefined();
      const changedAt = await changed();
      latencies.push({ fromAnswer: changedAt - answeredAt, fromRequest: changedAt - sentAt });
      expect(changedAt - answeredAt).toBeLessThan(CHARGE_TO_DOM_MS);
    }
    expect(await spentText(page, account)).toBe(`$${((160 + 4 * SAMPLES) / 100).toFixed(2)} of $5.00 (${(160 + 4 * SAMPLES) / 5}%)`);
    expect(await page.locator("#feed li").count()).toBe(SAMPLES);
    expect(await page.locator("#feed li").first().innerText()).toMatch(/Northwind Traders charged \$0\.04: \$1\.80 of \$5\.00 spent/);
  });

  it("draws 30 days of spend as the API reports them, in bars and in a table, and today's bar grows with a charge", async () => {
    const { page } = browser;
    const before = await apiFigures(gw.url, mainKey);
    await expect.poll(() => todayBar(page)).toBe(String(before.today));
    const sent = await send(gw.url, accounts[1]!, "one more for the chart");
    expect(sent.errors).toBeUndefined();
    await expect.poll(() => todayBar(page)).toBe(String(before.today + 4));
    const after = await apiFigures(gw.url, mainKey);
    expect(after.today).toBe(before.today + 4);
    expect(await page.locator("#chart-summary").innerText()).toMatch(new RegExp(`^Today: ${escaped(dollars(after.today))} · `));
    // The table, opened from the keyboard, says the same as the API, day by day (days without spend say $0.00).
    await page.locator(".chart-details summary").focus();
    await page.keyboard.press("Enter");
    const rows = await page.locator("#chart-table tbody tr").allInnerTexts();
    expect(rows).toHaveLength(30);
    const spent = new Map(after.days.map((day) => [day.period, day]));
    const expected = rows.map((row) => {
      const day = row.slice(0, 10);
      const figures = spent.get(day);
      return `${day}${day === utcDay(new Date()) ? " (today)" : ""}\t${figures?.messages ?? 0}\t${dollars(figures?.amount ?? 0)}`;
    });
    expect(rows).toEqual(expected);
    expect(rows.filter((row) => !row.endsWith("$0.00"))).toHaveLength(12); // the 12 days of history
    await page.keyboard.press("Enter"); // closed again
  });

  it("raises a budget alert in the feed when a charge crosses 80% of a budget, and the budget bar shows it", async () => {
    const { page } = browser;
    const globex = accounts[2]!;
    // A daily budget of 10 cents: the 4 cents Globex spent today count; the next 4-cent message reaches 8, 80%.
    const set = await gql(gw.url, UPDATE, { id: globex.id, input: { budget: { amount: 10, period: "DAY" } } }, mainKey);
    expect(set.data.updateSubAccount.budget).toMatchObject({ spent: 4, amount: 10 });
    const sent = await send(gw.url, globex, "crossing 80%");
    expect(sent.errors).toBeUndefined();
    await expect.poll(() => page.locator("#alerts li").first().innerText()).toMatch(/Budget Globex \(no limit\) reached 80% of its budget: \$0\.08 spent this period \(the mark is \$0\.08\)\.$/);
    expect(await page.locator("#alerts li").count()).toBe(4);
    const bar = page.getByRole("progressbar", { name: "Globex (no limit): budget used today" });
    await expect.poll(() => bar.getAttribute("aria-valuenow")).toBe("80");
    const tomorrow = utcDay(new Date(Date.now() + DAY_MS));
    expect(await page.locator(`li[data-id="${globex.id}"] .budget-spent`).innerText()).toBe(`$0.08 of $0.10 today (80%) · renews ${tomorrow}`);
    expect(await bar.getAttribute("aria-valuetext")).toBe(`$0.08 of $0.10 today (80%) · renews ${tomorrow}`);
    expect(await page.locator(`li[data-id="${globex.id}"] .meter-budget`).getAttribute("class")).toMatch(/is-near/);
    const api = (await apiFigures(gw.url, mainKey)).subAccounts.find((account) => account.id === globex.id)!;
    expect(api.budget).toMatchObject({ spent: 8, remaining: 2 });
  });

  it("shows the team's low balance when a charge takes it below the threshold, with its alert", async () => {
    const { page } = browser;
    const { team } = await apiFigures(gw.url, mainKey);
    const threshold = team.balance - 2;
    const set = await gql(gw.url, `mutation($input: UpdateTeamInput!) { updateTeam(input: $input) { lowBalanceThreshold lowBalance } }`, { input: { lowBalanceThreshold: threshold } }, mainKey);
    expect(set.data.updateTeam).toEqual({ lowBalanceThreshold: threshold, lowBalance: false });
    expect(await page.locator("#team-low-balance").isVisible()).toBe(false);
    await send(gw.url, accounts[1]!, "below the threshold");
    await expect.poll(() => page.locator("#team-low-balance").isVisible()).toBe(true);
    expect(await page.locator("#team-low-balance").innerText()).toBe(`Low balance: below ${dollars(threshold)}. Top up soon.`);
    expect(await page.locator("#team-threshold").innerText()).toBe(`Low-balance threshold: ${dollars(threshold)}`);
    expect(await page.locator("#team-balance").innerText()).toBe(dollars(team.balance - 4));
    await expect.poll(() => page.locator("#alerts li").first().innerText()).toMatch(
      new RegExp(`Low balance The team balance fell below ${escaped(dollars(threshold))}: ${escaped(dollars(team.balance - 4))} left \\(a charge of Northwind Traders\\)\\.$`),
    );
    expect((await apiFigures(gw.url, mainKey)).team.lowBalance).toBe(true);
  });

  it("after the gateway restarts, reconnects, replays the charge it missed (once, marked as such), and keeps updating live", async () => {
    const { page } = browser;
    const account = accounts[0]!;
    // Charged while the gateway is down, through another instance on the same database whose events reach
    // no subscriber of this one: the resumed subscription replays it from the ledger.
    const sibling = await gw.sibling();
    let missed: Awaited<ReturnType<typeof send>> | undefined;
    await gw.restart(async () => {
      await expect.poll(() => page.locator("#connection").getAttribute("data-state")).not.toBe("live");
      missed = await send(sibling.url, account, "while you were away");
    });
    await sibling.close();
    expect(missed!.errors).toBeUndefined();
    await expect.poll(() => page.locator("#connection").getAttribute("data-state"), { timeout: 20_000 }).toBe("live");
    await expect.poll(() => spentText(page, account), { timeout: 5_000 }).toBe("$4.84 of $20.00 (24%)");
    const replayed = page.locator(`#feed li[data-message-id="${missed!.data.sendMessage.id}"]`);
    await expect.poll(() => replayed.count()).toBe(1);
    expect(await replayed.innerText()).toMatch(/Client ABC charged \$0\.04: \$4\.84 of \$20\.00 spent\s*while disconnected$/);
    expect(await page.locator("#feed li.note").first().innerText()).toMatch(/Reconnected: the figures were fetched again/);
    await expect.poll(() => gw.gateway.services.openSubscriptions, { timeout: 5_000 }).toBe(2); // charges and alerts
    const changed = await watchSpent(page, account);
    await send(gw.url, account, "live again");
    const answeredAt = Date.now();
    expect((await changed()) - answeredAt).toBeLessThan(CHARGE_TO_DOM_MS);
    expect(await spentText(page, account)).toBe("$4.88 of $20.00 (24%)");
    expect(await page.locator("#feed li").first().innerText()).toMatch(/Client ABC charged \$0\.04: \$4\.88 of \$20\.00 spent$/);
  });

  it("a sub-account created while the page is open appears with its first charge", async () => {
    const { page } = browser;
    const created = await gql(gw.url, CREATE, { input: { name: "Hooli", creditLimit: 400 } }, mainKey);
    const hooli: Account = { id: created.data.createSubAccount.subAccount.id, key: created.data.createSubAccount.apiKey };
    accounts.push(hooli);
    await send(gw.url, hooli, "first");
    await expect.poll(() => page.locator(`li[data-id="${hooli.id}"] .account-spent`).count(), { timeout: 5_000 }).toBe(1);
    expect(await spentText(page, hooli)).toBe("$0.04 of $4.00 (1%)");
    await expect.poll(() => page.locator("#feed li").first().innerText()).toMatch(/Hooli charged \$0\.04: \$0\.04 of \$4\.00 spent/);
  });

  it("after its socket is cut, resumes where it stopped: every charge and alert made meanwhile (a new sub-account's too) shown once, totals equal to the API's", async () => {
    const { page } = browser;
    // Every WebSocket of the page through this route from now on: passed to the gateway, or refused while `cut`.
    let cut = false;
    const sockets: { page: WebSocketRoute; server: WebSocketRoute }[] = [];
    await page.routeWebSocket(/\/graphql$/, (socket) => {
      if (cut) return void socket.close({ code: 1006, reason: "cut" });
      sockets.push({ page: socket, server: socket.connectToServer() });
    });
    await page.reload(); // the key is in sessionStorage: the page opens again, its socket through the route
    await expect.poll(() => page.locator("#connection").getAttribute("data-state"), { timeout: 20_000 }).toBe("live");
    await expect.poll(() => gw.gateway.services.openSubscriptions, { timeout: 5_000 }).toBe(2);
    // Client ABC's monthly budget, set so that its next 4-cent charge reaches 80% of it exactly.
    const abc = accounts[0]!;
    const probe = await gql(gw.url, UPDATE, { id: abc.id, input: { budget: { amount: 100_000, period: "MONTH" } } }, mainKey);
    const spentThisMonth = probe.data.updateSubAccount.budget.spent as number;
    await gql(gw.url, UPDATE, { id: abc.id, input: { budget: { amount: ((spentThisMonth + 4) * 5) / 4, period: "MONTH" } } }, mainKey);

    cut = true;
    for (const socket of sockets.splice(0)) {
      await socket.server.close();
      await socket.page.close();
    }
    await expect.poll(() => page.locator("#connection").getAttribute("data-state")).not.toBe("live");
    await expect.poll(() => gw.gateway.services.openSubscriptions, { timeout: 5_000 }).toBe(0);
    const missed: string[] = [];
    const charge = async (account: Account, list: string[]) => {
      const sent = await send(gw.url, account, "while the socket is cut");
      expect(sent.errors).toBeUndefined();
      list.push(sent.data.sendMessage.id);
    };
    for (let i = 0; i < 3; i += 1) await charge(abc, missed); // the first crosses 80% of the budget: an alert
    for (let i = 0; i < 2; i += 1) await charge(accounts[1]!, missed);
    const created = await gql(gw.url, CREATE, { input: { name: "Stark Industries", creditLimit: 1_000 } }, mainKey);
    const stark: Account = { id: created.data.createSubAccount.subAccount.id, key: created.data.createSubAccount.apiKey };
    for (let i = 0; i < 2; i += 1) await charge(stark, missed);
    expect(await page.locator("#connection").getAttribute("data-state")).not.toBe("live");
    cut = false;
    await expect.poll(() => page.locator("#connection").getAttribute("data-state"), { timeout: 20_000 }).toBe("live");

    // One live charge per sub-account charged meanwhile: a sub-account's charges arrive in order, so once
    // it is on the page, every replayed charge before it has been applied too.
    const barrier: string[] = [];
    for (const account of [abc, accounts[1]!, stark]) await charge(account, barrier);
    for (const id of barrier) await expect.poll(() => page.locator(`#feed li[data-message-id="${id}"]`).count(), { timeout: 10_000 }).toBe(1);
    for (const id of missed) {
      expect(await page.locator(`#feed li[data-message-id="${id}"]`).count(), id).toBe(1);
      expect(await page.locator(`#feed li[data-message-id="${id}"] .badge`).innerText()).toBe("while disconnected");
    }
    const api = await apiFigures(gw.url, mainKey);
    for (const account of api.subAccounts) expect(await spentText(page, account), account.name).toBe(creditText(account));
    expect(await page.locator("#team-balance").innerText()).toBe(dollars(api.team.balance));
    expect(await todayBar(page)).toBe(String(api.today));
    // Each alert once: the budget alert raised while the socket was cut, and every one before it.
    const budgetAlert = api.alerts.find((alert) => alert.kind === "BUDGET" && alert.subAccountId === abc.id)!;
    expect(budgetAlert).toBeDefined();
    expect(await page.locator("#alerts li").evaluateAll((items) => items.map((item) => Number(item.getAttribute("data-sequence"))))).toEqual(api.alerts.map((alert) => alert.sequence));
    expect(await page.locator(`#alerts li[data-sequence="${budgetAlert.sequence}"]`).innerText()).toMatch(/Budget Client ABC reached 80% of its budget/);
    const abcBudget = api.subAccounts.find((account) => account.id === abc.id)!.budget!;
    expect(await page.getByRole("progressbar", { name: "Client ABC: budget used this month" }).getAttribute("aria-valuenow")).toBe(String(Math.floor((abcBudget.spent * 100) / abcBudget.amount)));
    expect(gw.gateway.services.openSubscriptions).toBe(2);
    await screenshot(page, "dashboard.png");
  });

  it("is usable on a phone-sized screen, with labelled bars, visible focus and readable contrast", async () => {
    const { page } = browser;
    await page.setViewportSize({ width: 390, height: 844 });
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await screenshot(page, "dashboard-phone.png");
    // The table of the 30 days fits too, once opened.
    await page.locator(".chart-details summary").focus();
    await page.keyboard.press("Enter");
    expect(await page.locator("#chart-table").isVisible()).toBe(true);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await page.keyboard.press("Enter");
    await page.locator("#forget").focus();
    const outline = await page.locator("#forget").evaluate((element) => getComputedStyle(element).outlineStyle);
    expect(outline).not.toBe("none");
    const selectors = ["#team-name", "#team-balance", "#team-threshold", ".account-name", ".account-spent", ".budget-spent", ".meter-label", "#feed li", "#feed time", "#alerts li", "#alerts time", "#chart-summary", ".chart-axis", ".chart-details summary", "#connection", "#forget", ".team-label"];
    for (const selector of selectors) expect(await contrastOf(page, selector), selector).toBeGreaterThanOrEqual(4.5);
    // Two live regions (charges, alerts), each named; every bar shown has a name and a value in words.
    expect(await page.getByRole("log").count()).toBe(2);
    expect(await page.getByRole("log", { name: "Alerts" }).count()).toBe(1);
    expect(await page.getByRole("log", { name: "Live feed" }).count()).toBe(1);
    expect(await page.getByRole("status").first().getAttribute("id")).toBe("connection");
    const bars = await page.locator("[role=progressbar]:visible").evaluateAll((elements) =>
      elements.map((element) => [element.getAttribute("aria-label"), element.getAttribute("aria-valuenow"), element.getAttribute("aria-valuetext")]),
    );
    expect(bars.length).toBeGreaterThanOrEqual(8);
    for (const [label, value, text] of bars) {
      expect(label).toMatch(/: (credit limit|budget) used/);
      expect(Number(value)).toBeGreaterThanOrEqual(0);
      expect(text).toMatch(/\$\d/);
    }
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  it("kept the key in this tab's sessionStorage only, and asked nothing of any other origin", async () => {
    const { page, context } = browser;
    expect(await page.evaluate(() => Object.values(sessionStorage))).toEqual([mainKey]);
    expect(await page.evaluate(() => localStorage.length)).toBe(0);
    expect(await context.cookies()).toEqual([]);
    expect(browser.requests.some((url) => url.includes(mainKey))).toBe(false);
    expect(page.url()).toBe(`${gw.url}/dashboard`);
    expect(foreignRequests(browser.requests, gw.url)).toEqual([]);
    expect(browser.requests).toContain(`${gw.url.replace(/^http/, "ws")}/graphql`);
    expect(await browser.problems()).toEqual([]);
    // "Forget key" empties it and goes back to the form.
    await page.getByRole("button", { name: "Forget key" }).click();
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    expect(await page.getByLabel("Main-account API key").isVisible()).toBe(true);
  });
});
