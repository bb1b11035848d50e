/**
 * What both sinks do before the first row: with `jdbc-url`, read the table's columns and check the schema against
 * them (all mismatches in one error), then compile the encoder for the table's types and the server version.
 *
 * @internal
 */
import type { Schema } from "effect"
import { Effect, Option } from "effect"
import * as RowEncoder from "../RowEncoder.js"
import type * as StarRocksConfig from "../StarRocksConfig.js"
import * as TableSchema from "../TableSchema.js"

export const prepareEncoder = <A, I, R>(
  schema: Schema.Schema<A, I, R>,
  config: StarRocksConfig.StarRocksConfig,
  columns: ReadonlyArray<string> | undefined
) =>
  Effect.gen(function*() {
    // Without `jdbc-url` the sink still works, trusting the schema's own types.
    const table = yield* Option.match(config.jdbcUrl, {
      onNone: () => Effect.succeed(undefined),
      onSome: (jdbc) =>
        TableSchema.validate(schema, {
          host: jdbc.host,
          port: jdbc.port,
          user: config.username,
          password: config.password,
          database: config.database,
          table: config.table,
          serverVersion: Option.getOrUndefined(config.serverVersion),
          fields: columns
        })
    })
    const encoder = RowEncoder.make(schema, {
      columns,
      timeZone: config.timeZone,
      csvJsonFallback: config.csvJsonFallback,
      serverSupportsEnclose: table?.supportsEnclose ??
        TableSchema.supportsEnclose(Option.getOrUndefined(config.serverVersion)),
      columnTypes: table?.columnTypes,
      // buffers of settled bodies are reused, but never more than one batch's worth is kept idle
      bufferPoolBytes: config.maxBytes
    })
    return { encoder, table }
  })
