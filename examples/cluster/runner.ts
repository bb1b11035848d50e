/**
 * One process of the scale-out example (see README.md next to this file): an @effect/cluster runner whose shard
 * locks, runner list and messages live in MariaDB (`SqlRunnerStorage`, `SqlMessageStorage`), and which registers
 * one cluster singleton per source partition. @effect/cluster runs each singleton on the runner that holds its
 * shard and moves it when a runner dies, stops answering or joins; the singleton runs the partition's exactly-once
 * pipeline (partition.ts), whose checkpoints are in the same MariaDB (`Checkpointer/Sql`).
 *
 *   npx tsx examples/cluster/runner.ts --port 34431 --fe 127.0.0.1:8030 --db shop --table orders \
 *     [--stream ORDERS_CLUSTER] [--subjects orders] [--partitions 8] [--prefix orders_cluster] \
 *     [--mysql mysql://root@127.0.0.1:3306/test] [--nats 127.0.0.1:4222] [--every-rows 2000] \
 *     [--lock-expiration-ms 6000] [--retry-ms 3000] [--fence 1|0]
 *
 * Every process must be given the same `--partitions`, `--prefix` and `--mysql`, and its own `--port` (the
 * runner's address, `127.0.0.1:<port>`, unique in the cluster; keep it across restarts of the same process).
 *
 * The partitions' sinks fence with `owner` = the runner's address (`--fence 0` turns it off, to measure its cost).
 *
 * stdout: `runner <address> <pid>`, `start <partition> <owner>`, `recovered <partition> <seq> <owner> <labels>`,
 * `ack <partition> <checkpoint id> <seq> <owner> <labels>`, `failed <partition> <owner> <error>`,
 * `stopped <partition> <owner>`.
 */
import { StarRocksConfig, StarRocksSink } from "@effect-starrocks/sink"
import * as CheckpointerSql from "@effect-starrocks/sink/Checkpointer/Sql"
import { RunnerAddress, ShardingConfig, Singleton, SqlMessageStorage, SqlRunnerStorage } from "@effect/cluster"
import { NodeClusterSocket, NodeRuntime } from "@effect/platform-node"
import { MysqlClient } from "@effect/sql-mysql2"
import { Cause, Duration, Effect, Layer, Logger, LogLevel, Option, Redacted, Schedule } from "effect"
import { connect } from "nats"
import { nats, partitionName, runPartition, say } from "./partition.js"

const argv = process.argv.slice(2)
const opt = (name: string, fallback?: string): string => {
  const i = argv.indexOf(`--${name}`)
  const v = i >= 0 ? argv[i + 1] : fallback
  if (v === undefined) throw new Error(`missing --${name}`)
  return v
}

const port = Number(opt("port"))
const fe = opt("fe")
const database = opt("db", "shop")
const table = opt("table", "orders")
const streamName = opt("stream", "ORDERS_CLUSTER")
const subjects = opt("subjects", "orders")
const partitions = Number(opt("partitions", "8"))
const prefix = opt("prefix", "orders_cluster")
const mysqlUrl = opt("mysql", "mysql://root@127.0.0.1:3306/test")
const natsServer = opt("nats", "127.0.0.1:4222")
const everyRows = Number(opt("every-rows", "2000"))
const lockExpirationMs = Number(opt("lock-expiration-ms", "6000"))
const retryMs = Number(opt("retry-ms", "3000"))
const fence = opt("fence", "1") !== "0"

const address = RunnerAddress.make("127.0.0.1", port)
const owner = `${address.host}:${address.port}`

/**
 * The cluster's settings. Shard locks are rows of `<prefix>_locks` with an expiry rather than MariaDB advisory
 * locks: an advisory lock belongs to a connection, and the connection of a paused (SIGSTOP) process stays open, so
 * its shards would never move. With row locks a runner that stops refreshing loses its shards after
 * `shardLockExpiration` (and drops out of the runner list, whose heartbeats expire alike).
 */
const sharding: Partial<ShardingConfig.ShardingConfig["Type"]> = {
  runnerAddress: Option.some(address),
  shardsPerGroup: 64,
  shardLockDisableAdvisory: true,
  shardLockExpiration: Duration.millis(lockExpirationMs),
  shardLockRefreshInterval: Duration.millis(Math.max(500, Math.floor(lockExpirationMs / 3))),
  refreshAssignmentsInterval: Duration.millis(1000),
  entityTerminationTimeout: Duration.seconds(5),
  runnerHealthCheckInterval: Duration.seconds(5)
}

const Mysql = MysqlClient.layer({ url: Redacted.make(mysqlUrl), maxConnections: 8 })

/** Runners, shard locks and messages of the cluster in MariaDB, under `<prefix>_…` tables. */
const ClusterStorage = Layer.mergeAll(
  SqlRunnerStorage.layerWith({ prefix }),
  SqlMessageStorage.layerWith({ prefix })
).pipe(Layer.provide(ShardingConfig.layer(sharding)))

const Cluster = NodeClusterSocket.layer({ storage: "byo", shardingConfig: sharding }).pipe(
  Layer.provide(ClusterStorage)
)

const config = StarRocksConfig.make({
  loadUrl: fe,
  database,
  table,
  username: process.env["STARROCKS_USER"] ?? "root",
  password: Redacted.make(process.env["STARROCKS_PASSWORD"] ?? ""),
  format: "json"
})

/** The sink's services and the shared checkpoint store (one row per partition in `<prefix>_checkpoints`). */
const SinkServices = Layer.merge(
  StarRocksSink.layer(config),
  CheckpointerSql.layerSql({ table: `${prefix}_checkpoints` })
)

const program = Effect.gen(function*() {
  const nc = yield* Effect.acquireRelease(
    nats("connect", () => connect({ servers: natsServer, name: `starrocks-cluster-${owner}` })),
    (nc) => Effect.promise(() => nc.close().then(() => undefined, () => undefined))
  )
  say(`runner ${owner} ${process.pid}`)

  /**
   * Partition k's singleton: its pipeline, again after a failure (a StarRocks or NATS error) while this runner
   * still holds the partition; interrupted when the partition moves away.
   */
  const singleton = (k: number) => {
    const name = partitionName(k)
    const run = Effect.sync(() => say(`start ${name} ${owner}`)).pipe(
      Effect.zipRight(
        runPartition({ nc, stream: streamName, subjects, partition: k, keyPrefix: prefix, owner, everyRows, fence })
      ),
      Effect.tapErrorCause((cause) =>
        Effect.sync(() => say(`failed ${name} ${owner} ${Cause.pretty(cause).split("\n")[0]}`))
      ),
      // fenced: another process claimed the partition (this one was paused, or cut off, past its shard lock). The
      // cluster's next lock refresh stops this singleton; retrying at once would claim the partition back
      Effect.tapError((error) =>
        error._tag === "ExactlyOnceError" && error.reason === "Fenced"
          ? Effect.sleep(Duration.millis(lockExpirationMs))
          : Effect.void
      ),
      Effect.retry(Schedule.spaced(Duration.millis(retryMs))),
      Effect.onInterrupt(() => Effect.sync(() => say(`stopped ${name} ${owner}`))),
      Effect.asVoid
    )
    return Singleton.make(`${prefix}-${name}`, run)
  }

  const singletons = Array.from({ length: partitions }, (_, k) => singleton(k)).reduce(
    (all, one) => Layer.merge(all, one),
    Layer.empty
  )
  return yield* Layer.launch(singletons.pipe(Layer.provide(SinkServices), Layer.provide(Cluster)))
})

program.pipe(
  Effect.scoped,
  Effect.provide(Mysql),
  Logger.withMinimumLogLevel(LogLevel.Warning),
  NodeRuntime.runMain
)
