import type { CodegenConfig } from "@graphql-codegen/cli";

// The frontend's build step: type the operations in src/ and write the
// persisted-documents manifest the gateway loads with TRUSTED_DOCUMENTS.
const config: CodegenConfig = {
  schema: "../../schema.graphql",
  documents: ["src/**/*.ts", "!src/gql/**/*"],
  generates: {
    "./src/gql/": {
      preset: "client",
      presetConfig: {
        // Writes src/gql/persisted-documents.json: { "sha256:<hash>": "<document>" }.
        persistedDocuments: true,
      },
    },
  },
};

export default config;
