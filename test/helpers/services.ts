import type { Database } from "../../src/db/client.ts";
import { loadPriceTable } from "../../src/domain/pricing.ts";
import { createInProcessBus } from "../../src/events/inProcess.ts";
import { systemClock } from "../../src/services/clock.ts";
import { SimulatedProvider } from "../../src/services/delivery.ts";
import { createServices } from "../../src/services/index.ts";

/** The services on a test's database, as the operator CLI has them: to create teams beside gateway processes. */
export function createServicesForTests(db: Database) {
  return createServices({
    db,
    clock: systemClock,
    prices: loadPriceTable(),
    bus: createInProcessBus(),
    deliveryProvider: new SimulatedProvider(20),
    onBackgroundError: () => {},
  });
}
