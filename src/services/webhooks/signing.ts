import { Webhook } from "standardwebhooks";

/**
 * The Standard Webhooks headers of one attempt, signed with the `standardwebhooks`
 * library: `webhook-id` (the event's id, the same on every attempt),
 * `webhook-timestamp` (this attempt's, in seconds) and `webhook-signature`, which
 * holds one `v1,<signature>` per secret, space-separated: during a rotation's
 * overlap both the new and the previous secret sign, and a receiver holding
 * either verifies.
 */
export function signedHeaders(secrets: readonly string[], webhookId: string, at: Date, body: string): Record<string, string> {
  return {
    "webhook-id": webhookId,
    "webhook-timestamp": String(Math.floor(at.getTime() / 1000)),
    "webhook-signature": secrets.map((secret) => new Webhook(secret).sign(webhookId, at, body)).join(" "),
  };
}
