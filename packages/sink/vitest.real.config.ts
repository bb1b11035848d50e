import { defineConfig } from "vitest/config"
import shared from "../../vitest.shared.js"

// `npm run test:real`: only the integration suite, against a real cluster (STARROCKS_FE, STARROCKS_JDBC).
export default defineConfig({
  test: {
    ...shared.test,
    name: "sink-real",
    include: ["test/integration/*.itest.ts"],
    testTimeout: 180_000
  }
})
