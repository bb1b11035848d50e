/**
 * The integration suite against a real StarRocks cluster (not part of `npm test` or CI: no cluster runs there).
 *
 *   STARROCKS_FE=127.0.0.1:8030 STARROCKS_JDBC=127.0.0.1:9030 npm run test:real
 *
 * See docs/testing-real-cluster.md for StarRocks' all-in-one container image.
 */
import { describe, layer } from "@effect/vitest"
import { sinkSuite } from "./suite.js"
import { tablesSuite } from "./tables.js"
import { realTarget } from "./targets.js"

describe("sink against a real StarRocks cluster", () => {
  layer(realTarget, { excludeTestServices: true, timeout: "60 seconds" })(
    (it) => sinkSuite(it, { emulator: false, jdbc: true })
  )
  layer(realTarget, { excludeTestServices: true, timeout: "60 seconds" })(
    (it) => tablesSuite(it, { emulator: false, jdbc: true })
  )
})
