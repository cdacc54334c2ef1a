import PostgresClient
import TocsinCore

/// A Core enum stored as text: bound by its raw value, decoded strictly (a
/// value the code does not know is a decoding error, not a guess).
public protocol StoredEnum: RawRepresentable, CaseIterable, PostgresEncodable, PostgresNonNullDecodable
where RawValue == String {}

extension StoredEnum {
    public var postgresText: String? { rawValue }

    public init(nonNullPostgresText text: String) throws {
        guard let value = Self(rawValue: text) else {
            throw PostgresError(kind: .decoding, message: "unknown \(Self.self) value")
        }
        self = value
    }
}

extension AlertStatus: StoredEnum {}
extension Resolution: StoredEnum {}
extension AlertSource: StoredEnum {}
extension AlertTransition.Kind: StoredEnum {}
extension NotificationStatus: StoredEnum {}
extension NotificationTransition: StoredEnum {}
extension GroupAlertState: StoredEnum {}
extension DeliveryEvent: StoredEnum {}
extension NotifyConfig.Channel.Kind: StoredEnum {}
extension DueReason: StoredEnum {}
extension EvaluationTrigger: StoredEnum {}
extension EvaluationOutcome: StoredEnum {}
extension Rule.Severity: StoredEnum {}
extension Rule.Kind: StoredEnum {}
extension Rule.Comparison: StoredEnum {}
extension RuleErrorCode: StoredEnum {}
extension Scope: StoredEnum {}
