import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import TocsinCore
import TocsinStore

/// The Alertmanager v2 API (prometheus/alertmanager `api/v2/openapi.yaml`,
/// v0.25) at `/api/v2`, so Prometheus, Grafana and amtool use Tocsin as
/// their Alertmanager: posted alerts become external alerts, silences are
/// Tocsin's silences. Errors are Alertmanager's: a JSON string.
struct AlertmanagerRoutes {
    let store: Store
    let config: Configuration
    let startedAt: Date

    func register(alerts: RouterGroup<AlertsContext>, read: RouterGroup<ReadContext>, admin: RouterGroup<AdminContext>) {
        alerts.post("alerts", use: postAlerts)
        read.get("alerts", use: getAlerts)
        read.get("alerts/groups", use: getGroups)
        read.get("silences", use: getSilences)
        admin.post("silences", use: postSilence)
        read.get("silence/{silenceID}", use: getSilence)
        admin.delete("silence/{silenceID}", use: deleteSilence)
        read.get("status", use: status)
        read.get("receivers", use: receivers)
    }

    // MARK: alerts

    static let maxAlerts = 1000

    @Sendable func postAlerts(_ request: Request, context: AlertsContext) async throws -> Response {
        var request = request
        let buffer = try await request.collectBody(upTo: min(context.bodyLimit, JSONBody.maxBytes))
        guard let object = try? JSONSerialization.jsonObject(with: Data(buffer.readableBytesView), options: []) else {
            throw APIError.badRequest("the body is not valid JSON")
        }
        guard let items = object as? [Any] else { throw APIError.badRequest("the body must be a JSON array of alerts") }
        guard items.count <= Self.maxAlerts else {
            throw APIError.badRequest("at most \(Self.maxAlerts) alerts per request")
        }
        var issues: [ValidationIssue] = []
        var posted: [PostedAlert] = []
        for (index, item) in items.enumerated() {
            switch Self.parseAlert(item) {
            case .success(let alert): posted.append(alert)
            case .failure(let problems): issues += problems.list.map { ValidationIssue(index: index, field: $0.field, reason: $0.reason) }
            }
        }
        guard issues.isEmpty else { throw APIError.badRequest("invalid alerts", details: issues) }
        let outcome = try await store.externalAlerts.receive(posted, resolveTimeoutSeconds: config.externalResolveTimeoutSeconds,
                                                             reopenGraceSeconds: config.externalReopenGraceSeconds,
                                                             actor: context.identity.name)
        if !outcome.fired.isEmpty || !outcome.resolved.isEmpty || outcome.stale > 0 {
            context.logger.info("external alerts received", metadata: [
                "alerts.fired": "\(outcome.fired)", "alerts.resolved": "\(outcome.resolved)",
                "alerts.updated": "\(outcome.updated.count)", "alerts.stale": "\(outcome.stale)",
            ])
        }
        return Response(status: .ok, headers: [.cacheControl: "no-store"])
    }

    struct Problem {
        var field: String
        var reason: String
    }

    struct Problems: Error { var list: [Problem] }

    static let alertFields: Set<String> = ["labels", "annotations", "startsAt", "endsAt", "generatorURL"]

    /// One posted alert: known fields only, labels (alertname required) and
    /// annotations bounded, timestamps RFC 3339 with endsAt not before
    /// startsAt. Go's zero time (`0001-01-01T00:00:00Z`) means absent.
    static func parseAlert(_ item: Any) -> Result<PostedAlert, Problems> {
        guard let fields = item as? [String: Any] else { return .failure(Problems(list: [Problem(field: "", reason: "must be an object")])) }
        var problems: [Problem] = []
        for key in fields.keys.sorted() where !alertFields.contains(key) {
            problems.append(Problem(field: String(key.prefix(64)),
                                    reason: "unknown field (expected \(alertFields.sorted().joined(separator: ", ")))"))
        }
        let labels = labelSet(fields["labels"], field: "labels", maxValue: 2048, problems: &problems) ?? [:]
        if fields["labels"] == nil || fields["labels"] is NSNull { problems.append(Problem(field: "labels", reason: "is required")) }
        if let name = labels["alertname"] {
            if name.isEmpty || name.unicodeScalars.count > 128 {
                problems.append(Problem(field: "labels.alertname", reason: "must be 1 to 128 characters"))
            }
        } else if fields["labels"] is [String: Any] {
            problems.append(Problem(field: "labels.alertname", reason: "is required"))
        }
        let annotations = labelSet(fields["annotations"], field: "annotations", maxValue: 16_384, problems: &problems) ?? [:]
        let startsAt = timestamp(fields["startsAt"], field: "startsAt", problems: &problems)
        let endsAt = timestamp(fields["endsAt"], field: "endsAt", problems: &problems)
        if let startsAt, let endsAt, endsAt < startsAt {
            problems.append(Problem(field: "endsAt", reason: "must not be before startsAt"))
        }
        var generatorURL: String?
        if let value = fields["generatorURL"], !(value is NSNull) {
            if let text = value as? String, text.unicodeScalars.count <= 2048, !text.utf8.contains(0) {
                generatorURL = text.isEmpty ? nil : text
            } else {
                problems.append(Problem(field: "generatorURL", reason: "must be a string of at most 2048 characters without NUL"))
            }
        }
        guard problems.isEmpty else { return .failure(Problems(list: problems)) }
        return .success(PostedAlert(labels: labels, annotations: annotations, startsAt: startsAt, endsAt: endsAt,
                                    generatorURL: generatorURL))
    }

    /// A label set: at most 64 names of 1 to 256 characters (any UTF-8),
    /// values at most `maxValue` characters, no NUL.
    static func labelSet(_ value: Any?, field: String, maxValue: Int, problems: inout [Problem]) -> [String: String]? {
        guard let value, !(value is NSNull) else { return nil }
        guard let map = value as? [String: Any] else {
            problems.append(Problem(field: field, reason: "must be an object of string values"))
            return nil
        }
        guard map.count <= 64 else {
            problems.append(Problem(field: field, reason: "at most 64 entries"))
            return nil
        }
        var out: [String: String] = [:]
        for (name, raw) in map.sorted(by: { $0.key < $1.key }) {
            let where_ = "\(field).\(name.prefix(64))"
            guard let text = raw as? String else {
                problems.append(Problem(field: where_, reason: "must be a string"))
                continue
            }
            if name.isEmpty || name.unicodeScalars.count > 256 {
                problems.append(Problem(field: field, reason: "names must be 1 to 256 characters"))
            } else if text.unicodeScalars.count > maxValue {
                problems.append(Problem(field: where_, reason: "must be at most \(maxValue) characters"))
            } else if name.utf8.contains(0) || text.utf8.contains(0) {
                problems.append(Problem(field: where_, reason: "must not contain NUL (U+0000)"))
            } else {
                out[name] = text
            }
        }
        return out
    }

    static func timestamp(_ value: Any?, field: String, problems: inout [Problem]) -> Date? {
        guard let value, !(value is NSNull) else { return nil }
        guard let text = value as? String, text.utf8.count <= 64, let date = RFC3339.parse(text) else {
            problems.append(Problem(field: field, reason: "must be an RFC 3339 timestamp"))
            return nil
        }
        // Go's zero time: "not set".
        return date.timeIntervalSince1970 < -62_000_000_000 ? nil : date
    }

    /// The filters of GET /alerts and /alerts/groups.
    struct AlertQuery {
        var matchers: [SilenceMatcher] = []
        var active = true
        var silenced = true
        var inhibited = true
        var unprocessed = true
        var receiver: String?
    }

    static func filters(_ request: Request, groups: Bool) throws -> AlertQuery {
        var reader = QueryReader(request, encoding: .form)
        var query = AlertQuery()
        query.matchers = try matchers(&reader)
        query.active = reader.bool("active") ?? true
        query.silenced = reader.bool("silenced") ?? true
        query.inhibited = reader.bool("inhibited") ?? true
        if !groups { query.unprocessed = reader.bool("unprocessed") ?? true }
        if let receiver = reader.string("receiver", maxLength: AnchoredRegex.maxLength), !receiver.isEmpty {
            if let problem = AnchoredRegex.problem(receiver) { reader.issue("receiver", problem) }
            query.receiver = receiver
        }
        try reader.check()
        return query
    }

    /// `filter` parameters (repeated): Alertmanager matchers, at most 64.
    static func matchers(_ reader: inout QueryReader) throws -> [SilenceMatcher] {
        let values = reader.all("filter")
        try reader.check()
        guard values.count <= 64 else { throw APIError.badRequest("at most 64 filter parameters") }
        var out: [SilenceMatcher] = []
        for text in values {
            switch SilenceMatcher.parse(text) {
            case .success(let matcher): out.append(matcher)
            case .failure(let error): throw APIError.badRequest("bad matcher \(text.prefix(200)): \(error.description)")
            }
        }
        return out
    }

    /// The open alerts with their receivers and what holds them.
    func gettableAlerts(_ query: AlertQuery) async throws -> [(alert: Alert, body: AMAlertBody, routes: [NotifyConfig.Delivery])] {
        let alerts = try await store.externalAlerts.open()
        let notify = try await store.config.activeNotify().config
        let silences = try await store.silences.active()
        let inhibitions = try await store.outbox.inhibitions(alertIDs: alerts.map(\.id))
        let now = store.clock.now()
        let receiverPattern = query.receiver
        var out: [(Alert, AMAlertBody, [NotifyConfig.Delivery])] = []
        for alert in alerts {
            let labels = AlertLabelSet.of(alert)
            guard query.matchers.matchAll(labels) else { continue }
            let deliveries = notify.deliveries(for: alert, transition: .fired)
            let receivers = deliveries.map(\.channel.name)
            if let receiverPattern, !receivers.contains(where: { SilenceMatcher(name: "receiver", value: receiverPattern, isRegex: true).matches(["receiver": $0]) }) { continue }
            let silencedBy = silences.filter { $0.isActive(at: now) && $0.matches(alert) }.map { AMSilenceID.format($0.id) }
            let inhibitedBy = inhibitions[alert.id].map { [AMAlertBody.alertID($0)] } ?? []
            let suppressed = !silencedBy.isEmpty || !inhibitedBy.isEmpty
            if !suppressed && !query.active { continue }
            if !silencedBy.isEmpty && !query.silenced { continue }
            if !inhibitedBy.isEmpty && !query.inhibited { continue }
            let body = AMAlertBody(alert, labels: labels, receivers: receivers, silencedBy: silencedBy, inhibitedBy: inhibitedBy,
                                   resolveTimeout: config.externalResolveTimeoutSeconds)
            out.append((alert, body, deliveries))
        }
        return out
    }

    @Sendable func getAlerts(_ request: Request, context: ReadContext) async throws -> Response {
        let query = try Self.filters(request, groups: false)
        return try APIJSON.response(try await gettableAlerts(query).map(\.body))
    }

    @Sendable func getGroups(_ request: Request, context: ReadContext) async throws -> Response {
        let query = try Self.filters(request, groups: true)
        // A group per receiver and values of its route's group_by labels
        // (all of the receiver's alerts when the route has none).
        var groups: [String: AMAlertGroupBody] = [:]
        var order: [String] = []
        for (alert, body, deliveries) in try await gettableAlerts(query) {
            let labels = AlertLabelSet.of(alert)
            for delivery in deliveries.isEmpty ? [nil] : deliveries.map(Optional.some) {
                let receiver = delivery?.channel.name ?? AMAlertGroupBody.noReceiver
                var groupLabels: [String: String] = [:]
                for name in delivery?.route.groupBy ?? [] { groupLabels[name] = labels[name] ?? "" }
                let key = receiver + "\u{0}" + groupLabels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "\u{0}")
                if groups[key] == nil {
                    groups[key] = AMAlertGroupBody(labels: groupLabels, receiver: .init(name: receiver), alerts: [])
                    order.append(key)
                }
                groups[key]!.alerts.append(body)
            }
        }
        return try APIJSON.response(order.map { groups[$0]! })
    }

    // MARK: silences

    @Sendable func getSilences(_ request: Request, context: ReadContext) async throws -> Response {
        var reader = QueryReader(request, encoding: .form)
        let filter = try Self.matchers(&reader)
        let now = store.clock.now()
        let silences = try await store.silences.all().map { AMSilenceBody($0.silence, updatedAt: $0.updatedAt, now: now) }
        // As Alertmanager: a silence is listed when the filter matches the
        // labels its equality matchers name.
        return try APIJSON.response(silences.filter { silence in
            var labels: [String: String] = [:]
            for matcher in silence.matchers where matcher.isEqual && !matcher.isRegex { labels[matcher.name] = matcher.value }
            return filter.matchAll(labels)
        })
    }

    @Sendable func getSilence(_ request: Request, context: ReadContext) async throws -> Response {
        let id = try AMSilenceID.parse(context.parameters.get("silenceID"))
        guard let (silence, updatedAt) = try await store.silences.get(id: id) else {
            throw APIError.notFound("silence \(AMSilenceID.format(id)) not found")
        }
        return try APIJSON.response(AMSilenceBody(silence, updatedAt: updatedAt, now: store.clock.now()))
    }

    @Sendable func deleteSilence(_ request: Request, context: AdminContext) async throws -> Response {
        let id = try AMSilenceID.parse(context.parameters.get("silenceID"))
        guard try await store.silences.get(id: id) != nil else {
            throw APIError.notFound("silence \(AMSilenceID.format(id)) not found")
        }
        if try await store.silences.delete(id: id) {
            context.logger.info("silence ended", metadata: ["silence.id": "\(id)"])
        }
        return Response(status: .ok, headers: [.cacheControl: "no-store"])
    }

    static let silenceFields: Set<String> = ["id", "matchers", "startsAt", "endsAt", "createdBy", "comment"]
    static let matcherFields: Set<String> = ["name", "value", "isRegex", "isEqual"]

    /// Creates a silence, or replaces the one named by `id` (which is ended
    /// and a new one created: the answer names the new id).
    @Sendable func postSilence(_ request: Request, context: AdminContext) async throws -> Response {
        var body = try await JSONBody.read(request, context: context, allowed: Self.silenceFields)
        let replaces: Int?
        if let raw = body.string("id", maxLength: 64), !raw.isEmpty {
            replaces = try AMSilenceID.parse(raw)
        } else {
            replaces = nil
        }
        let matchers = Self.silenceMatchers(body.raw("matchers"), issues: &body.issues)
        let starts = body.timestamp("startsAt", required: true)
        let ends = body.timestamp("endsAt", required: true)
        let createdBy = body.string("createdBy", required: true, maxLength: 256)
        let comment = body.string("comment", required: true, maxLength: 2000)
        if let createdBy, createdBy.isEmpty { body.issues.append(ValidationIssue(field: "createdBy", reason: "must not be empty")) }
        if let comment, comment.isEmpty { body.issues.append(ValidationIssue(field: "comment", reason: "must not be empty")) }
        let now = store.clock.now()
        if let starts, let ends {
            if ends <= starts { body.issues.append(ValidationIssue(field: "endsAt", reason: "must be after startsAt")) }
            else if ends <= now { body.issues.append(ValidationIssue(field: "endsAt", reason: "must be in the future")) }
        }
        try body.check()
        guard let starts, let ends, let createdBy, let comment else { throw APIError.badRequest("invalid silence") }
        if let replaces {
            guard try await store.silences.get(id: replaces) != nil else {
                throw APIError.notFound("silence \(AMSilenceID.format(replaces)) not found")
            }
        }
        let silence = try await store.silences.create(
            rule: nil, platform: nil, severity: nil, labels: [:], startsAt: starts > now ? starts : nil, endsAt: ends,
            comment: comment, createdBy: createdBy, matchers: matchers, createdByKey: context.identity.name)
        if let replaces { _ = try await store.silences.delete(id: replaces) }
        context.logger.info("silence created", metadata: ["silence.id": "\(silence.id)"])
        return try APIJSON.response(["silenceID": AMSilenceID.format(silence.id)])
    }

    /// 1 to 64 matchers, at least one of which does not match the empty
    /// string (a silence of everything is refused, as by Alertmanager).
    static func silenceMatchers(_ raw: Any?, issues: inout [ValidationIssue]) -> [SilenceMatcher] {
        guard let raw else {
            issues.append(ValidationIssue(field: "matchers", reason: "is required"))
            return []
        }
        guard let items = raw as? [Any], (1...64).contains(items.count) else {
            issues.append(ValidationIssue(field: "matchers", reason: "must be an array of 1 to 64 matchers"))
            return []
        }
        var out: [SilenceMatcher] = []
        for (index, item) in items.enumerated() {
            let field = "matchers[\(index)]"
            guard let fields = item as? [String: Any] else {
                issues.append(ValidationIssue(field: field, reason: "must be an object"))
                continue
            }
            for key in fields.keys.sorted() where !matcherFields.contains(key) {
                issues.append(ValidationIssue(field: "\(field).\(key.prefix(64))", reason: "unknown field (expected isEqual, isRegex, name, value)"))
            }
            guard let name = fields["name"] as? String, let value = fields["value"] as? String,
                  let isRegex = (fields["isRegex"] as? NSNumber).flatMap(boolean) else {
                issues.append(ValidationIssue(field: field, reason: "needs name and value (strings) and isRegex (boolean)"))
                continue
            }
            var isEqual = true
            if let raw = fields["isEqual"], !(raw is NSNull) {
                guard let flag = (raw as? NSNumber).flatMap(boolean) else {
                    issues.append(ValidationIssue(field: "\(field).isEqual", reason: "must be a boolean"))
                    continue
                }
                isEqual = flag
            }
            let matcher = SilenceMatcher(name: name, value: value, isRegex: isRegex, isEqual: isEqual)
            if let problem = matcher.problem {
                issues.append(ValidationIssue(field: field, reason: problem))
                continue
            }
            out.append(matcher)
        }
        if issues.isEmpty, out.allSatisfy({ $0.matches([:]) }) {
            issues.append(ValidationIssue(field: "matchers", reason: "at least one matcher must not match the empty string"))
        }
        return out
    }

    static func boolean(_ number: NSNumber) -> Bool? {
        String(cString: number.objCType) == "c" ? number.boolValue : nil
    }

    // MARK: status and receivers

    @Sendable func status(_ request: Request, context: ReadContext) async throws -> Response {
        let notify = try await store.config.activeNotify().config
        return try APIJSON.response(AMStatusBody(
            cluster: .init(name: "tocsin", status: "ready", peers: []),
            versionInfo: .init(),
            config: .init(original: AlertmanagerConfigText.render(notify, resolveTimeoutSeconds: config.externalResolveTimeoutSeconds)),
            uptime: startedAt))
    }

    @Sendable func receivers(_ request: Request, context: ReadContext) async throws -> Response {
        let notify = try await store.config.activeNotify().config
        return try APIJSON.response(notify.channels.map { AMReceiverBody(name: $0.name) })
    }
}

/// Alertmanager's silence ids are strings (UUIDs); Tocsin's are integers.
/// Silence 42 is `00000000-0000-0000-0000-000000000042`: a well-formed
/// UUID whose last group is the id in decimal. Either form is accepted.
enum AMSilenceID {
    static func format(_ id: Int) -> String {
        let digits = String(id)
        return "00000000-0000-0000-0000-" + String(repeating: "0", count: max(0, 12 - digits.count)) + digits
    }

    static func parse(_ text: String?) throws -> Int {
        guard let text else { throw APIError.badRequest("a silence id is required") }
        var digits = Substring(text)
        if text.count == 36, text.hasPrefix("00000000-0000-0000-0000-") { digits = text.suffix(12) }
        guard (1...12).contains(digits.count), digits.allSatisfy({ $0.isASCII && $0.isNumber }), let id = Int(digits) else {
            throw APIError.badRequest("\(text.prefix(64)) is not a silence id: ids look like 00000000-0000-0000-0000-000000000042 or 42")
        }
        return id
    }
}

/// Turns the errors of `/api/v2` into Alertmanager's shape: the status
/// with a JSON string body saying what is wrong (its headers, such as
/// `Retry-After` and `WWW-Authenticate`, kept).
struct AlertmanagerErrorMiddleware: RouterMiddleware {
    typealias Context = TocsinRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            let apiError = APIError.from(error, requestID: context.requestID)
            if apiError.status == .serviceUnavailable {
                context.logger.warning("request answered 503", metadata: ["error": "\(error)"])
            } else if apiError.status.code >= 500 {
                context.logger.error("request failed", metadata: ["error": "\(error)"])
            }
            return Self.response(apiError)
        }
    }

    static func response(_ error: APIError) -> Response {
        var message = error.message
        if !error.details.isEmpty {
            message += ": " + error.details.map { detail in
                [detail.index.map { "alert \($0)" }, detail.field, detail.reason].compactMap { $0 }.joined(separator: " ")
            }.joined(separator: "; ")
        }
        let data = (try? JSONEncoder().encode(message)) ?? Data(#""error""#.utf8)
        var headers = error.headers
        headers[.contentType] = "application/json"
        headers[.cacheControl] = "no-store"
        return Response(status: error.status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
