import { describe, layer } from "@effect/vitest"
import { requireMariaDb } from "./mariadb.js"
import { sinkSuite } from "./suite.js"
import { tablesSuite } from "./tables.js"
import { emulatorTarget } from "./targets.js"

describe("sink against the emulator (memory storage)", () => {
  layer(emulatorTarget({ storage: "memory", fes: 2 }), { excludeTestServices: true, timeout: "30 seconds" })(
    (it) => sinkSuite(it, { emulator: true, jdbc: false })
  )
  layer(emulatorTarget({ storage: "memory", fes: 1 }), { excludeTestServices: true, timeout: "30 seconds" })(
    (it) => tablesSuite(it, { emulator: true, jdbc: false })
  )
})

describe.runIf(requireMariaDb())("sink against the emulator (MariaDB storage)", () => {
  layer(emulatorTarget({ storage: "mariadb", fes: 2 }), { excludeTestServices: true, timeout: "30 seconds" })(
    (it) => sinkSuite(it, { emulator: true, jdbc: true })
  )
  layer(emulatorTarget({ storage: "mariadb", fes: 1 }), { excludeTestServices: true, timeout: "30 seconds" })(
    (it) => tablesSuite(it, { emulator: true, jdbc: true })
  )
})
