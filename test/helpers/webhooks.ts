import { randomBytes } from "node:crypto";

/** The gateway's SECRETS_KEY in webhook tests. */
export const SECRETS_KEY = randomBytes(32).toString("hex");

/** Small timings, so retries happen within a test. */
export const WEBHOOK_ENV = {
  SECRETS_KEY,
  WEBHOOK_POLL_MS: "50",
  WEBHOOK_TIMEOUT_MS: "400",
  WEBHOOK_BACKOFF_BASE_MS: "100",
  WEBHOOK_LEASE_MS: "1500",
  DELIVERY_STEP_MS: "100",
};

export const ENDPOINT_FIELDS = "id url description events enabled disabledAt disabledReason failingSince previousSecretExpiresAt createdAt updatedAt";

export const CREATE_ENDPOINT = `mutation($input: CreateWebhookEndpointInput!) {
  createWebhookEndpoint(input: $input) { secret endpoint { ${ENDPOINT_FIELDS} } }
}`;

export const DELIVERIES = `query($id: ID!, $first: Int, $after: String) {
  webhookDeliveries(endpointId: $id, first: $first, after: $after) {
    edges { node { id eventId eventType attempt outcome httpStatus error durationMs nextRetryAt attemptedAt } }
    pageInfo { hasNextPage endCursor }
  }
}`;
