/// Runs `operation` to completion even if the calling task is cancelled:
/// for the write that finishes something already done elsewhere (marking a
/// delivered notification sent), where skipping it would cause a repeat.
public func shielded<T: Sendable>(_ operation: @escaping @Sendable () async throws -> T) async throws -> T {
    try await Task { try await operation() }.value
}
