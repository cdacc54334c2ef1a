import Foundation
import Testing
import TestSupport
import TocsinCore
import TocsinStore

/// Every status and outcome stored as text has one definition in the code
/// (TocsinCore's enums) and a CHECK constraint in the migrations; this
/// reads the migrations and compares the two lists, so neither can change
/// alone.
@Suite("Stored statuses: the enums and the CHECK constraints agree")
struct StatusEnumTests {
    /// `column IN ('a', 'b', …)` of every CHECK in the migrations, by
    /// `table.column` (a later migration's constraint on the same column
    /// replaces an earlier one's list).
    static func checks() throws -> [String: [String]] {
        let directory = TestEnvironment.repositoryRoot.appendingPathComponent("migrations")
        var found: [String: [String]] = [:]
        for file in try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted() where file.hasSuffix(".sql") {
            let sql = try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
            var table = ""
            for line in sql.split(separator: "\n") {
                if let match = line.firstMatch(of: /(?:CREATE TABLE|ALTER TABLE) (\w+)/) { table = String(match.1) }
                for match in line.matches(of: /CHECK \((\w+) IN \(([^)]*)\)\)/) {
                    found["\(table).\(match.1)"] = Self.list(match.2)
                }
                // A dropped `<table>_<column>_check` no longer lists values.
                if let match = line.firstMatch(of: /DROP CONSTRAINT (\w+)_check/), match.1.hasPrefix(table + "_") {
                    found.removeValue(forKey: "\(table).\(match.1.dropFirst(table.count + 1))")
                }
                // Arrays of values: `scopes <@ ARRAY['a', 'b']`.
                for match in line.matches(of: /(\w+) <@ ARRAY\[([^\]]*)\]/) {
                    found["\(table).\(match.1)"] = Self.list(match.2)
                }
            }
        }
        return found
    }

    static func list(_ text: Substring) -> [String] {
        text.split(separator: ",").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: " '")) }
    }

    static func values<T: RawRepresentable & CaseIterable>(_ type: T.Type) -> [String] where T.RawValue == String {
        T.allCases.map(\.rawValue)
    }

    static let columns: [(String, [String])] = [
        ("alerts.status", values(AlertStatus.self)),
        ("alerts.severity", values(Rule.Severity.self)),
        ("alerts.resolution", values(Resolution.self)),
        ("alerts.source", values(AlertSource.self)),
        ("alert_events.transition", values(AlertTransition.Kind.self)),
        ("alert_events.from_status", values(AlertStatus.self)),
        ("alert_events.to_status", values(AlertStatus.self)),
        ("alert_events.resolution", values(Resolution.self)),
        ("alert_rules.kind", values(Rule.Kind.self)),
        ("alert_rules.severity", values(Rule.Severity.self)),
        ("alert_rules.comparison", values(Rule.Comparison.self)),
        ("alert_rules.last_error_code", values(RuleErrorCode.self)),
        ("alert_rules.due_reason", values(DueReason.self)),
        ("rule_evaluations.outcome", values(EvaluationOutcome.self)),
        ("rule_evaluations.trigger", values(EvaluationTrigger.self)),
        ("notifications.transition", values(NotificationTransition.self)),
        ("notifications.channel_kind", values(NotifyConfig.Channel.Kind.self)),
        ("notifications.status", values(NotificationStatus.self)),
        ("silences.severity", values(Rule.Severity.self)),
        ("notification_group_alerts.state", values(GroupAlertState.self)),
        ("notification_group_alerts.notified_state", values(GroupAlertState.self)),
        ("delivery_ledger.event", values(DeliveryEvent.self)),
        ("config_versions.kind", values(ConfigVersion.Kind.self)),
        ("api_keys.scopes", values(Scope.self)),
    ]

    @Test("each enum has exactly the values of its column's CHECK", arguments: columns.map(\.0))
    func column(_ name: String) throws {
        let checks = try Self.checks()
        let expected = try #require(Self.columns.first { $0.0 == name }?.1)
        let constraint = try #require(checks[name], "no CHECK (… IN (…)) for \(name) in migrations/")
        #expect(Set(constraint) == Set(expected), "\(name): CHECK \(constraint.sorted()) vs enum \(expected.sorted())")
    }

    @Test("every listed CHECK of a status column is covered by an enum")
    func covered() throws {
        let listed = Set(Self.columns.map(\.0))
        let unlisted = try Self.checks().keys.filter { !listed.contains($0) }.sorted()
        #expect(unlisted.isEmpty, "CHECK constraints without an enum in this test: \(unlisted)")
    }
}
