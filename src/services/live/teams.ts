import type { EventBus } from "../../events/bus.ts";
import type { Topics } from "../../events/types.ts";
import { KeyIndex } from "./order.ts";
import type { EventSource } from "./stream.ts";

interface WatchedTeam {
  /** Positions of the team's keys, shared by its streams (src/services/live/order.ts). */
  keys: KeyIndex;
  /** Per key, the highest sequence heard on the bus since the team's first stream opened. */
  heard: Map<string, number>;
  streams: number;
  stopHearing(): void;
}

/**
 * The teams this instance has open streams for, per event source: what their
 * streams share, and what the bus has carried for them.
 *
 * The bus hands an event to every listener of its team in one synchronous
 * dispatch (src/events/inProcess.ts, src/events/redis.ts). So once a sequence
 * is heard here, every stream listening at that moment has received it, and a
 * stream that began listening later read its starting point after that event
 * was committed. The periodic ledger check therefore only visits the streams
 * of keys whose latest sequence in the database is beyond what was heard: with
 * 10,000 streams of one team and nothing lost, it visits none.
 */
export class WatchedTeams {
  readonly #bySource = new Map<EventSource<unknown>, Map<string, WatchedTeam>>();

  constructor(private readonly bus: EventBus) {}

  /** Counts one more stream of the team; `release` (once) uncounts it, and the last one forgets the team. */
  open<T extends keyof Topics>(topic: T, source: EventSource<Topics[T]>, teamId: string): { keys: KeyIndex; release(): void } {
    const teams = this.#teamsOf(source as EventSource<unknown>);
    let team = teams.get(teamId);
    if (!team) {
      const heard = new Map<string, number>();
      const stopHearing = this.bus.subscribe(topic, teamId, (event) => {
        const key = source.keyOf(event);
        const sequence = source.sequenceOf(event);
        if (sequence > (heard.get(key) ?? 0)) heard.set(key, sequence);
      });
      team = { keys: new KeyIndex(), heard, streams: 0, stopHearing };
      teams.set(teamId, team);
    }
    const opened = team;
    opened.streams += 1;
    let released = false;
    return {
      keys: opened.keys,
      release: () => {
        if (released) return;
        released = true;
        if (--opened.streams > 0) return;
        opened.stopHearing();
        teams.delete(teamId);
        if (teams.size === 0) this.#bySource.delete(source as EventSource<unknown>);
      },
    };
  }

  /** The highest sequence of the key heard on the bus while its team had open streams here (0 if none). */
  heard(source: EventSource<unknown>, teamId: string, key: string): number {
    return this.#bySource.get(source)?.get(teamId)?.heard.get(key) ?? 0;
  }

  #teamsOf(source: EventSource<unknown>): Map<string, WatchedTeam> {
    let teams = this.#bySource.get(source);
    if (!teams) this.#bySource.set(source, (teams = new Map()));
    return teams;
  }
}
