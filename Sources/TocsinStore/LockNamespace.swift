/// First key of every advisory lock Tocsin takes
/// (`pg_try_advisory_xact_lock(namespace, id)`). Fixed values, so another
/// application using the same database only collides if it picks the same
/// two-int keys; the second key is the id of what is locked. Every lock is
/// transaction-scoped: it goes with the transaction, however that ends.
enum LockNamespace {
    /// Schema migrations (id 0).
    static let migrations: Int32 = 0x7463_0001
    /// Partition creation, retention and pruning (id 0).
    static let partitions: Int32 = 0x7463_0002
    /// Rule evaluation (id = rule id).
    static let ruleEvaluation: Int32 = 0x7463_0003
    /// Applying configuration (id 0: rules, 1: notifications).
    static let configuration: Int32 = 0x7463_0004
    /// Resolving external alerts nobody re-posted (id 0).
    static let externalAlerts: Int32 = 0x7463_0005
    /// Leases of `metric_rollups` shards (id = shard, 0..<16): ingestion
    /// holds one, rollup compaction all (`MetricEventRepository.leaseShard`).
    static let rollupShard: Int32 = 0x7463_0006
}
