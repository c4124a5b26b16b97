import { afterAll, beforeAll, expect, it } from "vitest";
import { startGateway, type TestGateway } from "../helpers/gateway.ts";
import { SEND } from "../helpers/storm.ts";
import { describeInBrowser, foreignRequests, openBrowser, screenshot, type Browser } from "./browser.ts";

/**
 * README.md, "GraphiQL": the gateway serves GraphiQL with every asset itself
 * (no request leaves the machine), it opens on the example operations, the
 * schema and docs load before a key is pasted, a key pasted in the Headers tab
 * runs queries, and subscriptions receive charges.
 */
const CREATE = `mutation($input: CreateSubAccountInput!) { createSubAccount(input: $input) { apiKey subAccount { id } } }`;

describeInBrowser("GraphiQL in Chromium", () => {
  let gw: TestGateway;
  let browser: Browser;
  let mainKey: string;
  let subKey: string;

  beforeAll(async () => {
    gw = await startGateway({ env: { RATE_LIMIT_RPS: "0" } });
    ({ mainKey } = await gw.createTeam({ name: "Acme Messaging", balance: 250_000 }));
    const created = await gw.gql(CREATE, { input: { name: "Client ABC", externalId: "client_123", creditLimit: 100_000 } }, mainKey);
    subKey = created.data.createSubAccount.apiKey;
    browser = await openBrowser({ width: 1440, height: 900 });
  });
  afterAll(async () => {
    await browser?.close();
    await gw?.close();
  });

  const editor = () => browser.page.locator(".graphiql-query-editor");
  const response = () => browser.page.locator(".graphiql-response");
  /** What an editor shows (its spaces are non-breaking). */
  const text = async (locator: ReturnType<typeof editor>) => (await locator.innerText()).replace(/\u00a0/g, " ");

  it("opens on the example operations, with the schema and its docs loaded before any key is pasted", async () => {
    const { page } = browser;
    await page.goto(`${gw.url}/graphql`);
    await expect.poll(() => text(editor()), { timeout: 30_000 }).toMatch(/query Overview \{/);
    expect(await text(editor())).toMatch(/mutation CreateSubAccount/);
    await page.getByRole("button", { name: "Show Documentation Explorer" }).click();
    const docs = page.locator(".graphiql-doc-explorer");
    await expect.poll(() => docs.innerText(), { timeout: 15_000 }).toMatch(/subscription: Subscription/);
    await docs.getByText("Query", { exact: true }).first().click();
    await expect.poll(() => docs.innerText()).toMatch(/subAccounts/);
    await page.getByRole("button", { name: "Hide Documentation Explorer" }).click();
  });

  it("runs the example query with a key pasted into the Headers tab", async () => {
    const { page, context } = browser;
    await context.grantPermissions(["clipboard-read", "clipboard-write"]);
    const headers = page.locator(".graphiql-editor-tool .graphiql-editor:not(.hidden)");
    await headers.click();
    await page.keyboard.press("Control+A");
    // Pasted, as a person would: typing would let the editor close brackets and quotes on its own.
    await page.evaluate((text) => navigator.clipboard.writeText(text), JSON.stringify({ Authorization: `Bearer ${mainKey}` }));
    await page.keyboard.press("Control+V");
    await editor().getByText("viewer", { exact: true }).first().click();
    await page.keyboard.press("Control+Enter");
    await expect.poll(() => text(response()), { timeout: 15_000 }).toMatch(/"name": "Acme Messaging"/);
    expect(await text(response())).toMatch(/"name": "Client ABC"/);
    expect(await text(response())).not.toMatch(/"errors"/);
  });

  it("runs the example subscription, which receives a charge made through the API", async () => {
    const { page } = browser;
    await editor().getByText("viewer", { exact: true }).first().click();
    // The subscription is the last operation: put the cursor inside it.
    await page.keyboard.press("Control+End");
    for (let line = 0; line < 3; line += 1) await page.keyboard.press("ArrowUp");
    await page.keyboard.press("Control+Enter");
    await gw.untilSubscriptions(1);
    const sent = await gw.gql(SEND, { input: { to: "+447700900123", text: "Hello from Client ABC" } }, subKey);
    expect(sent.errors).toBeUndefined();
    await expect.poll(() => text(response()), { timeout: 10_000 }).toMatch(/"spendUpdated"[\s\S]*"amount": 4/);
    expect(await text(response())).toMatch(/"totalSpent": 4/);
    // For the screenshot: the subscription in view, and the Headers tab (the key) folded away.
    await page.keyboard.press("Home");
    await page.keyboard.press("Home");
    await page.getByRole("button", { name: "Hide editor tools" }).click();
    await screenshot(page, "graphiql.png", false);
    // Stop it (the same button), so the gateway releases it.
    await page.getByRole("button", { name: /Stop|Execute query/ }).first().click();
  });

  it("every request went to the gateway, nothing was blocked, and the key was kept nowhere", async () => {
    const { page, context } = browser;
    expect(browser.requests.length).toBeGreaterThan(3);
    expect(foreignRequests(browser.requests, gw.url)).toEqual([]);
    // The subscription's stream, stopped above, is the one request allowed to end early.
    expect(browser.failures.filter((failure) => !/ERR_ABORTED/.test(failure))).toEqual([]);
    expect(await browser.problems()).toEqual([]);
    const stored = await page.evaluate(() => JSON.stringify({ local: { ...localStorage }, session: { ...sessionStorage }, url: location.href }));
    expect(stored).toMatch(/graphiql/); // GraphiQL does keep its tabs...
    expect(stored).not.toContain(mainKey); // ...but never the headers.
    expect(JSON.stringify(await context.cookies())).not.toContain(mainKey);
  });
});
