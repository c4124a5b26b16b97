// The entry of the SQLite writer thread (src/db/sqliteWriterClient.ts starts it).
// A worker thread does not inherit the loader that runs the gateway's TypeScript
// (tsx) when the parent was started another way (Vitest), so it registers tsx
// itself and then loads the TypeScript entry it was given.
import { workerData } from "node:worker_threads";
import { register } from "tsx/esm/api";

register();
await import(workerData.entry);
