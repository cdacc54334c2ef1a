import Foundation
import Synchronization

/// Cancels the statement a connection is running, at most once, and only
/// while the closure that owns the connection is still running it: once
/// `disarm` is called the connection may belong to someone else, and a
/// cancel request would hit their query.
final class QueryCanceller: Sendable {
    private enum Phase {
        case waiting
        case running(PostgresConnection.Canceller?)
        case finished
        case fired(reason: String)
    }

    private let phase = Mutex(Phase.waiting)

    /// Before the closure runs; false when it was cancelled already.
    func arm(_ canceller: PostgresConnection.Canceller?) -> Bool {
        phase.withLock { phase in
            if case .fired = phase { return false }
            phase = .running(canceller)
            return true
        }
    }

    /// After the closure returns.
    func disarm() {
        phase.withLock { phase in
            if case .running = phase { phase = .finished }
        }
    }

    /// The deadline passed or the task was cancelled: cancels the running
    /// statement (the request is sent from a thread of its own: it is a
    /// network round trip).
    func fire(reason text: String) {
        let target = phase.withLock { phase -> PostgresConnection.Canceller?? in
            switch phase {
            case .waiting:
                phase = .fired(reason: text)
                return .some(nil)
            case .running(let canceller):
                phase = .fired(reason: text)
                return .some(canceller)
            case .finished, .fired:
                return nil
            }
        }
        guard let target else { return }
        if let canceller = target {
            Thread.detachNewThread { canceller.send() }
        }
    }

    var error: PostgresError {
        let reason = phase.withLock { phase -> String in
            if case .fired(let reason) = phase { return reason }
            return "cancelled"
        }
        return PostgresError(kind: .cancelled, message: reason, sqlState: "57014")
    }
}
