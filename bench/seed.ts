import { childEnv, tsxProc } from "./lib/proc.ts";
import { graphqlOk } from "./gateway.ts";

export interface SeededAccount {
  id: string;
  key: string;
  apiKeyId: string;
}

export interface SeededTeam {
  teamId: string;
  mainAccountId: string;
  mainKey: string;
  subAccounts: SeededAccount[];
}

const CREATE_SUB_ACCOUNT = `mutation Create($input: CreateSubAccountInput!) {
  createSubAccount(input: $input) { apiKey subAccount { id apiKeys { id } } }
}`;

/** Creates a team with the operator CLI (`npm run admin -- create-team --json`), as an operator would. */
async function createTeam(databaseUrl: string, name: string, balance: number): Promise<Omit<SeededTeam, "subAccounts">> {
  const stdout = await tsxProc(`admin create-team ${name}`, "src/cli/admin.ts", ["create-team", "--name", name, "--balance", String(balance), "--json"], childEnv({ DATABASE_URL: databaseUrl, LOG_LEVEL: "warn" })).finished(120_000);
  const created = JSON.parse(stdout.trim().split("\n").pop()!) as { team: { id: string }; mainAccount: { id: string }; apiKey: string };
  return { teamId: created.team.id, mainAccountId: created.mainAccount.id, mainKey: created.apiKey };
}

/** A team with `subAccounts` sub-accounts, each with its first API key, created through the gateway's GraphQL API. */
export async function seedTeam(options: {
  gatewayUrl: string;
  databaseUrl: string;
  name: string;
  balance: number;
  subAccounts: number;
  creditLimit: number | null;
}): Promise<SeededTeam> {
  const team = await createTeam(options.databaseUrl, options.name, options.balance);
  const subAccounts: SeededAccount[] = [];
  // A few at a time: creation is not what is measured.
  for (let start = 0; start < options.subAccounts; start += 10) {
    const batch = Array.from({ length: Math.min(10, options.subAccounts - start) }, (_, offset) =>
      graphqlOk<{ createSubAccount: { apiKey: string; subAccount: { id: string; apiKeys: { id: string }[] } } }>(options.gatewayUrl, team.mainKey, CREATE_SUB_ACCOUNT, {
        input: { name: `${options.name} client ${String(start + offset + 1).padStart(3, "0")}`, externalId: `bench-${start + offset + 1}`, creditLimit: options.creditLimit },
      }),
    );
    for (const created of await Promise.all(batch)) {
      const { subAccount, apiKey } = created.createSubAccount;
      subAccounts.push({ id: subAccount.id, key: apiKey, apiKeyId: subAccount.apiKeys[0]!.id });
    }
  }
  return { ...team, subAccounts };
}
