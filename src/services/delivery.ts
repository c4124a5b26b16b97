import type { ChargeStore } from "../db/charges.ts";
import type { Channel } from "../domain/channels.ts";

export type DeliveryStatus = "sent" | "delivered" | "failed";

export interface OutboundMessage {
  id: string;
  channel: Channel;
  to: string;
  text: string;
}

/** A channel provider: takes a stored, charged message and reports its progress. Real carriers plug in here. */
export interface DeliveryProvider {
  readonly name: string;
  deliver(message: OutboundMessage, report: (status: DeliveryStatus) => void): void;
  close(): void;
}

/** Simulates a carrier: queued, then sent after `stepMs`, then delivered after another `stepMs`. */
export class SimulatedProvider implements DeliveryProvider {
  readonly name = "simulated";
  readonly #timers = new Set<NodeJS.Timeout>();
  constructor(private readonly stepMs: number) {}

  #after(ms: number, action: () => void): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      action();
    }, ms);
    timer.unref();
    this.#timers.add(timer);
  }

  deliver(message: OutboundMessage, report: (status: DeliveryStatus) => void): void {
    this.#after(this.stepMs, () => {
      report("sent");
      this.#after(this.stepMs, () => report("delivered"));
    });
  }

  close(): void {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
  }
}

/** Records provider reports on the message, only ever moving forward (queued, sent, delivered). */
export function createDeliveryService(store: ChargeStore, provider: DeliveryProvider, onError: (error: unknown) => void) {
  return {
    dispatch(message: OutboundMessage): void {
      provider.deliver(message, (status) => {
        store.advanceMessageStatus(message.id, status, new Date()).catch(onError);
      });
    },
    close: () => provider.close(),
  };
}

export type DeliveryService = ReturnType<typeof createDeliveryService>;
