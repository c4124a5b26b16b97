import { h } from "../dom.ts";
import { formatCents, timeOf } from "../format.ts";
import type { PanelFactory } from "./panel.ts";

/** Entries kept on the page; older ones are dropped. */
const FEED_LENGTH = 50;

/**
 * Each charge as it happens, newest first, in a live region that assistive
 * technology announces politely. Charges made while the page was
 * disconnected are replayed when it resumes, and say so.
 */
export const feedPanel: PanelFactory = (container) => {
  const list = h("ol", { class: "feed", id: "feed", role: "log", "aria-live": "polite", "aria-relevant": "additions", "aria-labelledby": "feed-title" });
  const empty = h("p", { class: "empty" }, "Charges appear here as they happen.");
  container.append(h("section", { class: "panel panel-feed", "aria-labelledby": "feed-title" }, h("h2", { id: "feed-title" }, "Live feed"), empty, list));
  const add = (entry: HTMLLIElement) => {
    list.prepend(entry);
    while (list.children.length > FEED_LENGTH) list.lastElementChild?.remove();
    empty.hidden = true;
  };
  const note = (text: string) => {
    const now = new Date().toISOString();
    add(h("li", { class: "note" }, h("time", { datetime: now }, timeOf(now)), ` ${text}`));
  };
  return {
    render() {},
    onReconnected() {
      note("Reconnected: the figures were fetched again, and the charges made meanwhile follow (marked “while disconnected”).");
    },
    onNote: note,
    onSpend({ update, subAccount, missed }, { state }) {
      // A charge is shown once, even if it arrives again.
      if (list.querySelector(`li[data-message-id="${CSS.escape(update.messageId)}"]`)) return;
      const { currency } = state.team;
      const limit = update.subAccount.creditLimit === null ? "" : ` of ${formatCents(update.subAccount.creditLimit, currency)}`;
      const entry = h(
        "li",
        { class: update.limitReached ? "is-full" : undefined, "data-message-id": update.messageId },
        h("time", { datetime: update.chargedAt }, timeOf(update.chargedAt)),
        " ",
        h("strong", {}, subAccount.name),
        ` charged ${formatCents(update.amount, currency)}: ${formatCents(update.subAccount.totalSpent, currency)}${limit} spent`,
        update.limitReached ? h("span", { class: "badge badge-warning" }, "limit reached") : null,
        missed ? h("span", { class: "badge" }, "while disconnected") : null,
      );
      add(entry);
    },
  };
};
