import Logging
import ServiceLifecycle
import TocsinCore
import TocsinStore

/// The background services of `tocsin worker` and `tocsin run`.
func workerServices(config: Configuration, store: Store, logger: Logger) -> [any Service] {
    [
        MaintenanceService(store: store, retentionDays: config.metricsRetentionDays, logger: logger),
    ]
}
