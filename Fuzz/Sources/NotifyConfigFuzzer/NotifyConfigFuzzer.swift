// Notifications files (tocsin notify check/apply, tocsin run): any text gives
// problems or a configuration whose channels and routes are within their
// documented bounds, that detaches its secrets and reads back from the
// stored form. Read both with an environment (check, run) and without (apply).
import Foundation
import FuzzSupport
import TocsinCore

let environment = [
    "SLACK_OPS_URL": "https://hooks.slack.com/services/T000/B000/XXXX",
    "TOCSIN_WEBHOOK_SECRET": "s3cret-value",
    "PAGERDUTY_ROUTING_KEY": "R0UT1NGKEY",
    "SMTP_PASSWORD": "pw",
    "SMTP_URL": "smtp://smtp.example.com:587",
    "EMPTY": "",
]

func isName(_ text: String, first: (UInt8) -> Bool, rest: (UInt8) -> Bool, max: Int) -> Bool {
    let b = Array(text.utf8)
    return !b.isEmpty && b.count <= max && first(b[0]) && b.dropFirst().allSatisfy(rest)
}
func lowerOrDigit(_ c: UInt8) -> Bool { (0x61...0x7A).contains(c) || (0x30...0x39).contains(c) }

func checkReference(_ reference: SecretReference?, _ at: String, environment: [String: String]?) {
    guard let reference else { return }
    switch reference {
    case .environment(let name):
        require(isName(name, first: { $0 == 0x5F || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) },
                       rest: { $0 == 0x5F || (0x41...0x5A).contains($0) || lowerOrDigit($0) }, max: 128),
                "\(at): environment variable name \(excerpt(name))")
        if let environment { require(environment[name]?.isEmpty == false, "\(at): \(name) is not set but was accepted") }
    case .inline(let value):
        require(isBoundedText(value, maxLength: 4096), "\(at): inline value unbounded or with NUL")
    case .local:
        require(false, "\(at): a .local reference straight from a file")
    }
}

func check(_ result: NotifyConfigFile.Result, environment: [String: String]?) {
    require((result.config == nil) != result.problems.isEmpty,
            "config \(result.config == nil ? "absent" : "present") with \(result.problems.count) problems")
    for problem in result.problems { require(!problem.message.isEmpty, "a problem without a message") }
    guard let config = result.config else { return }
    require(config.channels.count <= 100 && config.routes.count <= 500, "\(config.channels.count) channels, \(config.routes.count) routes")
    var names: Set<String> = []
    for channel in config.channels {
        let at = "channel \(excerpt(channel.name))"
        require(isName(channel.name, first: lowerOrDigit, rest: { lowerOrDigit($0) || $0 == 0x5F || $0 == 0x2D }, max: 64),
                "\(at): the name is not ^[a-z0-9][a-z0-9_-]{0,63}$")
        require(names.insert(channel.name).inserted, "\(at) twice")
        require(channel.ratePerSecond.isFinite && (0.001...10_000).contains(channel.ratePerSecond), "\(at): rate \(channel.ratePerSecond)")
        require((1...10_000).contains(channel.burst), "\(at): burst \(channel.burst)")
        for (field, reference) in channel.secrets { checkReference(reference, "\(at).\(field)", environment: environment) }
        switch channel.kind {
        case .slack, .webhook: require(channel.url != nil, "\(at): no url")
        case .pagerduty: require(channel.routingKey != nil, "\(at): no routing key")
        case .email:
            require(channel.smtpURL != nil, "\(at): no smtp_url")
            require(channel.from.map { $0.contains("@") && !$0.contains(where: \.isNewline) && isBoundedText($0, maxLength: 256) } == true,
                    "\(at): from \(String(describing: channel.from))")
            require(!channel.to.isEmpty && channel.to.count <= 50
                    && channel.to.allSatisfy { $0.contains("@") && !$0.contains(where: \.isNewline) && isBoundedText($0, maxLength: 256) },
                    "\(at): to \(channel.to.map { excerpt($0) })")
            if let username = channel.username { require(isBoundedText(username, maxLength: 256), "\(at): username") }
        }
        require(!channel.destination.utf8.contains(0), "\(at): destination with NUL")
    }
    for (index, route) in config.routes.enumerated() {
        let at = "route #\(index + 1)"
        require(!route.channels.isEmpty && route.channels.count <= 100 && route.channels.allSatisfy(names.contains),
                "\(at): channels \(route.channels.map { excerpt($0) })")
        require((60...(30 * 86_400)).contains(route.repeatIntervalSeconds), "\(at): repeat_interval \(route.repeatIntervalSeconds)")
        require(route.labels.count <= 32 && route.labels.allSatisfy {
            !$0.key.isEmpty && isBoundedText($0.key, maxLength: 256) && isBoundedText($0.value, maxLength: 256)
        }, "\(at): labels")
        if let rules = route.rules {
            require(rules.count <= 1000 && rules.allSatisfy { isBoundedText($0, maxLength: 64) }, "\(at): rules")
        }
    }
    _ = config.description
    // What `notify apply` stores: no inline value left, readable back, and
    // holdable by jsonb.
    let (stored, local) = config.detachingSecrets(environment: environment ?? [:])
    require(stored.channelsWithInlineSecrets.isEmpty, "inline secrets left after detaching")
    require(local.count == config.channelsWithInlineSecrets.count, "\(local.count) detached of \(config.channelsWithInlineSecrets.count)")
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    guard let data = try? encoder.encode(stored) else {
        require(false, "the detached configuration cannot be encoded")
        return
    }
    let document = String(decoding: data, as: UTF8.self)
    require(!document.contains("\\u0000"), "the stored document holds \\u0000, which jsonb refuses")
    let decoded = try? JSONDecoder().decode(NotifyConfig.self, from: data)
    require(decoded == stored, "the stored document does not read back: \(excerpt(document, 300))")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzInput(data, size) { bytes in
        let yaml = text(bytes)
        check(NotifyConfigFile.parse(yaml: yaml, environment: environment), environment: environment)
        check(NotifyConfigFile.parse(yaml: yaml, environment: nil), environment: nil)
    }
}
