import { buildSchema, parse } from "graphql";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addAlert, alertFeedFrom, describeAlert } from "../src/frontends/dashboard/client/alerts.ts";
import { CHART_DAYS, chargeChart, chartFromReport, chartRange, chartTotal, rollTo } from "../src/frontends/dashboard/client/chart.ts";
import { formatCents, percentOf } from "../src/frontends/dashboard/client/format.ts";
import { retryDelay } from "../src/frontends/dashboard/client/live.ts";
import { keyProblem } from "../src/frontends/dashboard/client/session.ts";
import {
  applySpend,
  budgetAfter,
  isLowBalance,
  mergeState,
  nextBudgetReset,
  stateFromPages,
  type Budget,
  type DashboardState,
  type SpendAlert,
  type SpendUpdate,
} from "../src/frontends/dashboard/client/state.ts";
import { sameSequences } from "../src/frontends/dashboard/client/sync.ts";
import { dashboardDocuments, gatewayDashboardDocuments } from "../src/graphql/dashboardDocuments.ts";
import { printedSchema } from "../src/graphql/schema/index.ts";
import { startGateway, type TestGateway } from "./helpers/gateway.ts";

/**
 * README.md, "Live spend dashboard": served at /dashboard by the gateway with
 * nothing from elsewhere (a CSP that allows only this origin), using only the
 * public GraphQL API. What a browser does with it is in test/browser/.
 */

/** Hosts a page must never load from. Any absolute http(s) URL in an asset would be a request off the machine. */
const ABSOLUTE_URL = /(?:https?:)?\/\/[a-z0-9.-]+\.[a-z]{2,}(?::\d+)?\//i;

describe("the dashboard as served", () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway();
  });
  afterAll(() => gw?.close());

  it("/dashboard is a page with a CSP allowing only this origin, and only this gateway's assets", async () => {
    const response = await fetch(`${gw.url}/dashboard`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("text/html; charset=utf-8");
    const csp = response.headers.get("content-security-policy")!;
    expect(csp).toContain("default-src 'none'");
    for (const directive of csp.split(";").map((part) => part.trim())) {
      // Every source is this origin, data: images, or none: no host, no scheme-wide source, no inline or eval.
      expect(directive.split(/\s+/).slice(1).every((source) => ["'self'", "'none'", "data:"].includes(source)), directive).toBe(true);
    }
    expect(response.headers.get("x-content-type-options")).toBe("nosniff");
    const html = await response.text();
    expect(html).not.toMatch(ABSOLUTE_URL);
    const sources = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((match) => match[1]);
    expect(sources.sort()).toEqual(["#main", "/dashboard/dashboard.css", "/dashboard/dashboard.js", "data:,"]);
    // The input has no name: even a form submitted without the script would carry no key.
    expect(html).toMatch(/<input id="api-key" type="password"(?![^>]*\bname=)/);
  });

  it("the page lists the dashboard's documents by hash, and the script and styles refer to nothing elsewhere", async () => {
    const html = await (await fetch(`${gw.url}/dashboard`)).text();
    const embedded = JSON.parse(/<script type="application\/json" id="dashboard-documents">([^<]*)<\/script>/.exec(html)![1]!);
    expect(embedded).toEqual(Object.fromEntries(gatewayDashboardDocuments().map((document) => [document.name, document.hash])));
    for (const [path, type] of [
      ["/dashboard/dashboard.js", "text/javascript; charset=utf-8"],
      ["/dashboard/dashboard.css", "text/css; charset=utf-8"],
    ] as const) {
      const asset = await fetch(`${gw.url}${path}`);
      expect(asset.status).toBe(200);
      expect(asset.headers.get("content-type")).toBe(type);
      const body = await asset.text();
      expect(body.length).toBeGreaterThan(500);
      expect(body).not.toMatch(ABSOLUTE_URL);
      expect(body).not.toMatch(/@import|url\(\s*["']?(?!data:)[a-z]+:/i);
      // Unchanged assets are answered 304 to a revalidation.
      const again = await fetch(`${gw.url}${path}`, { headers: { "if-none-match": asset.headers.get("etag")! } });
      expect(again.status).toBe(304);
    }
    // The script holds no key-shaped string and reads no cookie, localStorage or URL parameter for one.
    const script = await (await fetch(`${gw.url}/dashboard/dashboard.js`)).text();
    expect(script).not.toMatch(/localStorage|document\.cookie|searchParams/);
    expect(script).toMatch(/sessionStorage/);
  });

  it("anything else under /dashboard is a coded 404, and other methods 405", async () => {
    const missing = await fetch(`${gw.url}/dashboard/secret.txt`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ code: "not_found" });
    const posted = await fetch(`${gw.url}/dashboard`, { method: "POST", body: "key=zv_live_x" });
    expect(posted.status).toBe(405);
    expect(posted.headers.get("allow")).toBe("GET, HEAD");
    expect(await posted.json()).toMatchObject({ code: "invalid_request" });
  });
});

describe("the dashboard's documents", () => {
  it("fit the gateway's schema and ask for a team's lowBalanceThreshold only once the schema has it", () => {
    const printed = printedSchema();
    const without = buildSchema(printed.replace(/\n  lowBalanceThreshold: [^\n]*/, ""));
    const withIt = buildSchema(printed.replace(/\n  lowBalanceThreshold: [^\n]*/, "").replace("type Team {", "type Team {\n  lowBalanceThreshold: Cents"));
    expect(dashboardDocuments(without)[0]!.text).not.toContain("lowBalanceThreshold");
    expect(dashboardDocuments(withIt)[0]!.text).toMatch(/team \{ [^}]*lowBalanceThreshold/);
    // The gateway's own: as its schema says today.
    const documents = gatewayDashboardDocuments();
    expect(documents.map((document) => document.name)).toEqual(["DashboardState", "DashboardSequences", "DashboardReport", "DashboardAlertList", "DashboardSpend", "DashboardAlerts"]);
    expect(documents[0]!.text.includes("lowBalanceThreshold")).toBe(/\n  lowBalanceThreshold: /.test(printed));
  });

  it("leave out a document whose root field the schema lacks", () => {
    const noSubscriptions = buildSchema(printedSchema().replace(/type Subscription \{[^}]*\}/, "").replace(/subscription: Subscription\n?/, ""));
    expect(dashboardDocuments(noSubscriptions).map((document) => document.name)).toEqual(["DashboardState", "DashboardSequences", "DashboardReport", "DashboardAlertList"]);
    for (const document of gatewayDashboardDocuments()) expect(() => parse(document.text)).not.toThrow();
  });
});

describe("the dashboard's client logic", () => {
  const update = (id: string, sequence: number, teamBalance: number, extra: Partial<SpendUpdate> = {}): SpendUpdate => ({
    subAccount: { id, totalSpent: 8 + (sequence - 2) * 4, creditLimit: 100, status: "ACTIVE" },
    amount: 4,
    messageId: `m-${id}-${sequence}`,
    teamBalance,
    remainingCredit: 100 - (8 + (sequence - 2) * 4),
    limitReached: false,
    chargedAt: `2026-01-0${Math.min(9, sequence)}T12:00:00.000Z`,
    sequence,
    budgetRemaining: null,
    ...extra,
  });
  const budget: Budget = { amount: 20, period: "MONTH", spent: 8, remaining: 12, periodStart: "2026-01-01T00:00:00.000Z", resetsAt: "2026-02-01T00:00:00.000Z" };
  const account = (chargeSequence: number, withBudget: Budget | null = null) => ({
    id: "a",
    name: "A",
    externalId: null,
    status: "ACTIVE" as const,
    totalSpent: 8 + (chargeSequence - 2) * 4,
    creditLimit: 100,
    chargeSequence,
    budget: withBudget,
  });
  const stateWith = (row: ReturnType<typeof account>, balance = 1000): DashboardState =>
    stateFromPages([
      {
        viewer: { account: { id: "main", isSubAccount: false }, team: { id: "t", name: "Acme", balance, currency: "USD", lowBalanceThreshold: 990 } },
        subAccounts: { totalCount: 1, edges: [{ node: row }], pageInfo: { hasNextPage: false, endCursor: null } },
      },
    ]);
  const state = stateWith(account(2));

  it("applies a charge newer than the row, once: a replayed or older one changes nothing", () => {
    const next = applySpend(state, update("a", 3, 996));
    expect(next).toMatchObject({ known: true, alreadyShown: false, reread: false });
    expect(next.state.subAccounts[0]).toMatchObject({ totalSpent: 12, chargeSequence: 3 });
    expect(next.state.team.balance).toBe(996);
    const replayed = applySpend(next.state, update("a", 3, 996));
    expect(replayed.alreadyShown).toBe(true);
    expect(replayed.state).toBe(next.state);
    expect(applySpend(next.state, update("a", 2, 1000)).state.subAccounts[0]!.totalSpent).toBe(12);
    expect(applySpend(state, update("unknown", 1, 996)).known).toBe(false);
  });

  it("keeps the balance of the latest charge when two sub-accounts' charges arrive out of order, and says when it is low", () => {
    const two = { ...state, subAccounts: [...state.subAccounts, { ...account(0), id: "b", name: "B" }] };
    const later = applySpend(two, update("a", 3, 992, { chargedAt: "2026-01-05T00:00:01.000Z" })).state;
    const earlier = applySpend(later, update("b", 1, 996, { chargedAt: "2026-01-05T00:00:00.000Z" })).state;
    expect(earlier.team.balance).toBe(992);
    expect(earlier.subAccounts[1]!.chargeSequence).toBe(1);
    expect(applySpend(earlier, update("a", 4, 985, { chargedAt: "2026-01-05T00:00:02.000Z" })).state.team).toMatchObject({ balance: 985, lowBalance: true });
  });

  it("a row fetched again replaces the figures unless the page already has newer ones; its settings always", () => {
    const live = applySpend(state, update("a", 4, 990)).state; // the page is at sequence 4
    const older = stateWith({ ...account(3), name: "Renamed", creditLimit: 200 }, 995);
    const merged = mergeState(live, older);
    expect(merged.subAccounts[0]).toMatchObject({ name: "Renamed", creditLimit: 200, chargeSequence: 4, totalSpent: 16 });
    expect(merged.team.balance).toBe(990);
    const newer = mergeState(live, stateWith(account(6), 980));
    expect(newer.subAccounts[0]).toMatchObject({ chargeSequence: 6, totalSpent: 24 });
    expect(newer.team.balance).toBe(980);
  });

  it("moves a budget with each charge, and asks to read it again when the event shows something it cannot know", () => {
    expect(budgetAfter(budget, update("a", 3, 996, { budgetRemaining: 8 }))).toEqual({ budget: { ...budget, spent: 12, remaining: 8 }, reread: false });
    // The amount changed since it was read: the remaining the event carries does not follow.
    expect(budgetAfter(budget, update("a", 3, 996, { budgetRemaining: 30 })).reread).toBe(true);
    // A new period began with this charge: its start and end are to be read.
    const renewed = budgetAfter(budget, update("a", 3, 996, { budgetRemaining: 16, chargedAt: "2026-02-01T00:00:00.000Z" }));
    expect(renewed).toMatchObject({ budget: { spent: 4, remaining: 16 }, reread: true });
    // Set or removed since it was read.
    expect(budgetAfter(null, update("a", 3, 996, { budgetRemaining: 16 })).reread).toBe(true);
    expect(budgetAfter(budget, update("a", 3, 996, { budgetRemaining: null }))).toEqual({ budget: null, reread: true });
    expect(nextBudgetReset(stateWith(account(2, budget)))).toBe(budget.resetsAt);
  });

  it("the chart adds each charge once, to its UTC day, and knows when it missed some", () => {
    const range = chartRange(new Date("2026-01-30T15:00:00Z"));
    expect(range).toMatchObject({ from: "2026-01-01T00:00:00.000Z", to: "2026-01-31T00:00:00.000Z" });
    expect(range.days).toHaveLength(CHART_DAYS);
    const chart = chartFromReport([{ period: "2026-01-30", amount: 40, messages: 10 }], range.days, new Map([["a", 10]]));
    const charge = (sequence: number, chargedAt = "2026-01-30T16:00:00.000Z") => ({ subAccountId: "a", sequence, amount: 4, chargedAt });
    expect(chargeChart(chart, charge(10)).added).toBe(false); // the report counted it
    const next = chargeChart(chart, charge(11));
    expect(next).toMatchObject({ added: true, gap: false });
    expect(next.chart.days.at(-1)).toEqual({ day: "2026-01-30", amount: 44, messages: 11 });
    expect(chargeChart(next.chart, charge(11)).added).toBe(false);
    expect(chargeChart(next.chart, charge(13)).gap).toBe(true);
    // A charge of a new day moves the chart on: today is the last bar, the oldest day drops out.
    const tomorrow = chargeChart(next.chart, charge(12, "2026-01-31T00:00:01.000Z")).chart;
    expect(tomorrow.days.map((day) => day.day).slice(-2)).toEqual(["2026-01-30", "2026-01-31"]);
    expect(tomorrow.days[0]!.day).toBe("2026-01-02");
    expect(chartTotal(tomorrow)).toBe(48);
    expect(rollTo(tomorrow, "2026-02-02").days.at(-1)).toEqual({ day: "2026-02-02", amount: 0, messages: 0 });
    expect(sameSequences(new Map([["a", 1], ["b", 0]]), new Map([["a", 1]]))).toBe(true);
    expect(sameSequences(new Map([["a", 1]]), new Map([["a", 2]]))).toBe(false);
  });

  it("the alert feed keeps each alert once, newest first, and says what crossed what", () => {
    const alert = (sequence: number, kind: SpendAlert["kind"] = "BUDGET"): SpendAlert => ({
      id: `al${sequence}`,
      kind,
      sequence,
      subAccountId: "a",
      subAccount: { id: "a", name: "A" },
      thresholdPercent: kind === "LOW_BALANCE" ? null : 80,
      threshold: 400,
      value: 404,
      messageId: `m${sequence}`,
      createdAt: "2026-01-01T00:00:00.000Z",
    });
    const feed = alertFeedFrom([alert(2), alert(1)]);
    expect(feed.sequence).toBe(2);
    expect(addAlert(feed, alert(2)).added).toBe(false);
    const next = addAlert(feed, alert(3, "LOW_BALANCE"));
    expect(next.feed.alerts.map((entry) => entry.sequence)).toEqual([3, 2, 1]);
    expect(describeAlert(alert(1), "Client ABC", "USD")).toBe("Client ABC reached 80% of its budget: $4.04 spent this period (the mark is $4.00).");
    expect(describeAlert(alert(1, "CREDIT_LIMIT"), null, "USD")).toBe("A reached 80% of its credit limit: $4.04 spent (the mark is $4.00).");
    expect(describeAlert({ ...alert(1, "LOW_BALANCE"), subAccountId: null, subAccount: null }, null, "USD")).toBe(
      "The team balance fell below $4.00: $4.04 left (a charge of The main account).",
    );
  });

  it("shows low balance only with a threshold, below it", () => {
    expect(isLowBalance({ id: "t", name: "T", balance: 10, currency: "USD" })).toBe(false);
    expect(isLowBalance({ id: "t", name: "T", balance: 10, currency: "USD", lowBalanceThreshold: null })).toBe(false);
    expect(isLowBalance({ id: "t", name: "T", balance: 10, currency: "USD", lowBalanceThreshold: 11 })).toBe(true);
    expect(isLowBalance({ id: "t", name: "T", balance: 11, currency: "USD", lowBalanceThreshold: 11 })).toBe(false);
  });

  it("formats cents exactly, up to 2^53", () => {
    expect(formatCents(0)).toBe("$0.00");
    expect(formatCents(5)).toBe("$0.05");
    expect(formatCents(123_456_789)).toBe("$1,234,567.89");
    expect(formatCents(10_000_000_000)).toBe("$100,000,000.00");
    expect(formatCents(Number.MAX_SAFE_INTEGER)).toBe("$90,071,992,547,409.91");
    expect(percentOf(50, 200)).toBe(25);
    expect(percentOf(300, 200)).toBe(100);
  });

  it("refuses keys that cannot open the dashboard before sending them", () => {
    expect(keyProblem("")).toMatch(/Paste/);
    expect(keyProblem("hello")).toMatch(/not an API key/);
    expect(keyProblem(`zv_live_sub_${"a".repeat(32)}`)).toMatch(/sub-account key/);
    expect(keyProblem(`zv_live_${"a".repeat(32)}`)).toBeNull();
  });

  it("reconnects with a growing, jittered, capped delay", () => {
    expect(retryDelay(0, () => 0)).toBe(250);
    expect(retryDelay(0, () => 1)).toBe(500);
    expect(retryDelay(3, () => 1)).toBe(4000);
    expect(retryDelay(30, () => 1)).toBe(10_000);
    expect(retryDelay(30, () => 0)).toBe(5_000);
  });
});
