/** How long /readyz waits for a dependency before calling it down. */
export const READINESS_TIMEOUT_MS = 2000;

export type DependencyState = "up" | "down";

export interface Readiness {
  ok: boolean;
  checks: Record<string, DependencyState>;
}

/** A dependency's probe: resolves when it answers. */
export type Probe = () => Promise<unknown>;

function withinTimeout(probe: Probe): Promise<DependencyState> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("timed out")), READINESS_TIMEOUT_MS);
  });
  return Promise.race([probe(), timeout]).then(
    () => "up" as const,
    () => "down" as const,
  ).finally(() => clearTimeout(timer));
}

/** Ready when every dependency (the database, Redis when configured) answers within READINESS_TIMEOUT_MS. */
export async function checkReadiness(probes: Record<string, Probe>): Promise<Readiness> {
  const names = Object.keys(probes);
  const states = await Promise.all(names.map((name) => withinTimeout(probes[name]!)));
  const checks = Object.fromEntries(names.map((name, index) => [name, states[index]!]));
  return { ok: states.every((state) => state === "up"), checks };
}
