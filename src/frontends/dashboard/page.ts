import type { DashboardDocument } from "../../graphql/dashboardDocuments.ts";

/**
 * The dashboard's HTML: the skeleton the client script fills in
 * (client/main.ts), and the documents it may send, by name and hash. Every
 * asset is this gateway's: the Content-Security-Policy allows nothing else.
 */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  // 'self' covers the WebSocket to this origin (ws: or wss:) as well.
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

/** JSON safe inside a <script> element: no "</script>" or "<!--" can close it. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, "\\u003c");
}

export function dashboardHtml(documents: DashboardDocument[]): string {
  const hashes = Object.fromEntries(documents.map((document) => [document.name, document.hash]));
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Live spend · Sub-accounts gateway</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/dashboard/dashboard.css">
<script type="module" src="/dashboard/dashboard.js"></script>
<script type="application/json" id="dashboard-documents">${scriptJson(hashes)}</script>
</head>
<body>
<a class="skip-link" href="#main">Skip to the dashboard</a>
<header class="top">
  <h1>Live spend</h1>
  <p id="connection" class="connection" role="status" data-state="stopped">Not connected</p>
  <button id="forget" type="button" class="secondary" hidden>Forget key</button>
</header>
<main id="main">
  <section id="key-panel" class="panel panel-key" aria-labelledby="key-title">
    <h2 id="key-title">Your team's spend, live</h2>
    <form id="key-form" method="post" novalidate>
      <label for="api-key">Main-account API key</label>
      <input id="api-key" type="password" autocomplete="off" autocapitalize="off" spellcheck="false" aria-describedby="key-help key-error" required>
      <p id="key-help" class="help">Kept in this browser tab only (sessionStorage): closing the tab forgets it. It is sent to this gateway alone, in the Authorization header.</p>
      <p id="key-error" class="error" role="alert" hidden></p>
      <button type="submit">Show the dashboard</button>
    </form>
  </section>
  <div id="dashboard" hidden>
    <h2 id="dashboard-title" class="visually-hidden" tabindex="-1">Dashboard</h2>
    <div id="panels" class="panels"></div>
  </div>
  <noscript><p class="panel">The dashboard needs JavaScript.</p></noscript>
</main>
</body>
</html>
`;
}
