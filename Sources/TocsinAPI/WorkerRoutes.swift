import Foundation
import Hummingbird
import Logging
import Synchronization
import TocsinCore
import TocsinEngine
import TocsinStore

/// The alert checker: its workers, and "run checks now".
struct WorkerRoutes {
    let store: Store
    let config: Configuration
    /// Who evaluates when no worker answers a check request in time: this
    /// process (with the same store, so routing is the applied one).
    let fallback: CheckRunner
    /// The process's database events: an answered check is announced there.
    let events: DatabaseEvents

    func register(read: RouterGroup<ReadContext>, admin: RouterGroup<AdminContext>) {
        read.get("workers/alert-checker", use: listWorkers)
        admin.post("workers/alert-checker", use: runChecks)
    }

    @Sendable func listWorkers(_ request: Request, context: ReadContext) async throws -> Response {
        let workers = try await store.workers.list(intervalSeconds: config.alertCheckIntervalSeconds)
        struct Body: Encodable {
            var interval_s: Int
            var workers: [WorkerBody]
        }
        return try APIJSON.response(Body(interval_s: config.alertCheckIntervalSeconds, workers: workers.map(WorkerBody.init)))
    }

    /// Queues an immediate check; exactly one worker claims it. When none has
    /// claimed it after 5 s (no worker running), this process runs it.
    @Sendable func runChecks(_ request: Request, context: AdminContext) async throws -> Response {
        var query = QueryReader(request)
        let ruleName = query.string("rule", maxLength: 64)
        let wait = query.bool("wait") ?? false
        try query.check()
        if let ruleName, try await store.rules.get(name: ruleName) == nil {
            throw APIError.notFound("no rule named \(ruleName)")
        }
        // Listening before the request exists, so its answer cannot be missed.
        let answered = Wakeup()
        let requested = Mutex<Int?>(nil)
        let watcher = wait ? Task { [events] in
            for await event in events.subscribe() {
                switch event {
                case .checkCompleted(let done) where done == requested.withLock({ $0 }): answered.signal()
                case .connected: answered.signal()  // a reconnect may have lost it: look
                default: break
                }
            }
        } : nil
        defer { watcher?.cancel() }
        let id = try await store.checks.create(ruleName: ruleName, requestedBy: context.identity.name)
        requested.withLock { $0 = id }
        let fallbackTask = startFallback(id: id, logger: context.logger)
        guard wait else {
            return try APIJSON.response(["id": id], status: .accepted)
        }
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if let current = try await store.checks.get(id: id), current.completed {
                // Answered: the fallback, if it is still watching, has nothing to do.
                fallbackTask.cancel()
                if let error = current.error, current.results?.isEmpty ?? true {
                    throw APIError(.internalServerError, code: "check_failed", message: error)
                }
                let results = current.results ?? []
                return try APIJSON.response(CheckResultBody(
                    id: id, evaluatedBy: current.claimedBy, evaluated: Set(results.map(\.rule)).count,
                    results: results.map(GroupResultBody.init)))
            }
            // Woken by the answer's NOTIFY; the timeout only covers a lost one.
            await answered.wait(timeout: .seconds(1))
            try Task.checkCancellation()
        }
        throw APIError(.gatewayTimeout, code: "check_timeout", message: "the check did not finish within 60 seconds; it continues")
    }

    func startFallback(id: Int, logger: Logger) -> Task<Void, Never> {
        let checks = store.checks, fallback = self.fallback
        return Task {
            let deadline = ContinuousClock.now + .seconds(5)
            while ContinuousClock.now < deadline {
                if Task.isCancelled { return }
                if let current = try? await checks.get(id: id), current.claimedBy != nil { return }
                try? await Task.sleep(for: .milliseconds(100))
            }
            if Task.isCancelled { return }
            if (try? await fallback.runIfUnclaimed(id: id)) == true {
                logger.info("no worker claimed the check; it ran in the API process", metadata: ["check.id": "\(id)"])
            }
        }
    }
}
