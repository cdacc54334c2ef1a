/// An optional that is written as an explicit `null` when it has no value
/// (synthesized `Encodable` leaves nil optionals out). Every response type
/// marks its optional fields with it, so the API's bodies always carry
/// every documented key.
@propertyWrapper
public struct NullEncoded<Value: Encodable & Sendable>: Encodable, Sendable {
    public var wrappedValue: Value?

    public init(wrappedValue: Value?) {
        self.wrappedValue = wrappedValue
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if let wrappedValue {
            try container.encode(wrappedValue)
        } else {
            try container.encodeNil()
        }
    }
}
