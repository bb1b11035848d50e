/**
 * @since 0.1.0
 */

/**
 * @since 0.2.0
 */
export * as Change from "./Change.js"

/**
 * @since 0.1.0
 */
export * as Checkpoint from "./Checkpoint.js"

/**
 * @since 0.1.0
 */
export * as Checkpointer from "./Checkpointer.js"

/**
 * @since 0.1.0
 */
export * as ColumnType from "./ColumnType.js"

/**
 * @since 0.2.0
 */
export * as DeadLetter from "./DeadLetter.js"

/**
 * @since 0.2.0
 */
export * as Debezium from "./Debezium.js"

/**
 * @since 0.3.0
 */
export * as Labels from "./Labels.js"

/**
 * @since 0.1.0
 */
export * as LabelStore from "./LabelStore.js"

/**
 * @since 0.1.0
 */
export * as LoadClient from "./LoadClient.js"

/**
 * @since 0.2.0
 */
export * as Prometheus from "./Prometheus.js"

/**
 * @since 0.1.0
 */
export * as RetryPolicy from "./RetryPolicy.js"

/**
 * @since 0.1.0
 */
export * as RowEncoder from "./RowEncoder.js"

/**
 * @since 0.1.0
 */
export * as SinkMetrics from "./SinkMetrics.js"

/**
 * @since 0.1.0
 */
export * as StarRocksConfig from "./StarRocksConfig.js"

/**
 * @since 0.1.0
 */
export * as StarRocksError from "./StarRocksError.js"

/**
 * @since 0.1.0
 */
export * as StarRocksSink from "./StarRocksSink.js"

/**
 * @since 0.1.0
 */
export * as StreamLoadResponse from "./StreamLoadResponse.js"

/**
 * @since 0.1.0
 */
export * as TableSchema from "./TableSchema.js"
