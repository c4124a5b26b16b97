import { createRequire } from "node:module";
import { defineConfig } from "vitest/config";

const require = createRequire(import.meta.url);

export default defineConfig({
  resolve: {
    // One graphql module for our code and for graphql-yoga/Pothos, as under Node (tsx) in production.
    // Vite would otherwise pick graphql's "module" entry (index.mjs) for src/ while the dependencies,
    // loaded by Node, get index.js: two GraphQLError classes, and `instanceof` fails across them.
    alias: [{ find: /^graphql$/, replacement: require.resolve("graphql") }],
  },
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/helpers/global-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: "forks",
    // Two cores: parallel files compete for them; keep the suite predictable.
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
  },
});
