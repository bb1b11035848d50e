import * as Net from "node:net"

const reachable = (host: string, port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = Net.connect({ host, port })
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(2000, () => done(false))
    socket.once("connect", () => done(true))
    socket.once("error", () => done(false))
  })

const available = await reachable("127.0.0.1", 3306)

/**
 * Whether to run the MariaDB-backed tests: when MariaDB answers on 127.0.0.1:3306, and always under CI=true (where
 * an unreachable MariaDB must fail the tests, not skip them).
 */
export const requireMariaDb = (): boolean => available || process.env["CI"] === "true"
