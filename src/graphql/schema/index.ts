import { lexicographicSortSchema, printSchema } from "graphql";
import { builder } from "../builder.ts";
import "./scalars.ts";
import "./team.ts";
import "./apiKey.ts";
import "./balance.ts";
import "./subAccount.ts";
import "./viewer.ts";
import "./message.ts";
import "./spend.ts";
import "./audit.ts";
import "./budget.ts";
import "./alert.ts";
import "./report.ts";
import "./webhook.ts";

export const schema = builder.toSchema();

/** The committed schema.graphql is exactly this text. */
export function printedSchema(): string {
  return `${printSchema(lexicographicSortSchema(schema))}\n`;
}
