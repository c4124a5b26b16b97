import { ApiError, readDocuments, run, type Documents } from "./api.ts";
import { byId, setText } from "./dom.ts";
import { closeSession, follow, openSession, revisit, type Session } from "./follow.ts";
import type { LiveStatus } from "./live.ts";
import { PANELS } from "./panels/index.ts";
import type { Panel } from "./panels/panel.ts";
import { forgetKey, keyProblem, loadKey, saveKey } from "./session.ts";

/**
 * The live spend dashboard (README.md, "Live spend dashboard"): paste a main
 * key; the team, every sub-account and the latest alerts are fetched, then
 * every charge and alert arrives over graphql-ws and moves the panels
 * (follow.ts keeps them true across dropped connections).
 */

const documents: Documents = readDocuments();
let session: Session | null = null;
/** Bumped by every start and stop: a start that finds it changed was overtaken. */
let generation = 0;

function statusText(status: LiveStatus): string {
  switch (status.state) {
    case "connecting":
      return "Connecting…";
    case "live":
      return "Live";
    case "reconnecting":
      return `Connection lost. Reconnecting in ${Math.max(1, Math.round(status.inMs / 1000))} s…`;
    case "stopped":
      return `Stopped: ${status.message}`;
  }
}

function showStatus(status: LiveStatus): void {
  const element = byId("connection");
  element.dataset.state = status.state;
  setText(element, statusText(status));
}

function showError(message: string): void {
  const error = byId("key-error");
  error.hidden = message === "";
  setText(error, message);
}

function handleFailure(error: unknown): void {
  const refusal = error instanceof ApiError ? error : new ApiError((error as { code?: string })?.code ?? "internal_error", (error as { message?: string })?.message ?? String(error), 0);
  // unauthorized, forbidden and the rest: the key does not open this dashboard. Back to the form.
  if (refusal.code === "unauthorized" || refusal.code === "forbidden") forgetKey();
  stop();
  showError(refusal.message);
  byId<HTMLInputElement>("api-key").focus();
}

function showDashboard(visible: boolean): void {
  byId("key-panel").hidden = visible;
  byId("dashboard").hidden = !visible;
  byId("forget").hidden = !visible;
}

/** The first fetch; an unreachable gateway is tried again with a backoff, anything else refuses the key. */
async function open(key: string, panels: Panel[], mine: number): Promise<Session | null> {
  const api = { run: <T,>(name: string, variables: Record<string, unknown> = {}) => run<T>(documents, name, variables, key) };
  const hooks = { documents, status: showStatus, notice: (message: string) => setText(byId("connection"), `Live, but: ${message}`), failed: handleFailure };
  for (let attempt = 0; generation === mine; attempt += 1) {
    try {
      return await openSession(key, api, panels, hooks);
    } catch (error) {
      if (!(error instanceof ApiError && error.code === "unreachable")) throw error;
      setText(byId("connection"), error.message);
      await new Promise((resolve) => setTimeout(resolve, Math.min(10_000, 500 * 2 ** attempt)));
    }
  }
  return null;
}

async function start(key: string): Promise<void> {
  stop();
  const mine = generation;
  const panelsElement = byId("panels");
  panelsElement.replaceChildren();
  const panels = PANELS.map((create) => create(panelsElement, { documents })).filter((panel): panel is Panel => panel !== null);
  showDashboard(true);
  showStatus({ state: "connecting" });
  try {
    const opened = await open(key, panels, mine);
    if (!opened || generation !== mine) return opened ? closeSession(opened) : undefined;
    session = opened;
  } catch (error) {
    if (generation === mine) handleFailure(error);
    return;
  }
  byId("dashboard-title").focus();
  follow(session);
}

function stop(): void {
  generation += 1;
  if (session) closeSession(session);
  session = null;
  showDashboard(false);
  setText(byId("connection"), "Not connected");
  byId("connection").dataset.state = "stopped";
}

function bind(): void {
  byId<HTMLFormElement>("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = byId<HTMLInputElement>("api-key");
    const key = input.value.trim();
    const problem = keyProblem(key);
    showError(problem ?? "");
    if (problem) return input.focus();
    input.value = "";
    saveKey(key);
    void start(key);
  });
  byId("forget").addEventListener("click", () => {
    forgetKey();
    stop();
    showError("");
    byId<HTMLInputElement>("api-key").focus();
  });
  // Back to a tab left in the background: fetch again rather than trust what it shows.
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && session) revisit(session);
  });
}

bind();
const stored = loadKey();
if (stored) void start(stored);
