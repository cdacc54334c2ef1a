import Foundation
import TocsinCore

extension NotifyConfig {
    /// The channels and routes this process uses: `NOTIFY_CONFIG` when set,
    /// else `SLACK_WEBHOOK_URL` for everything, else none.
    public static func load(config: Configuration, environment: [String: String]) throws -> NotifyConfig {
        if let path = config.notifyConfigFile {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw Configuration.Error("cannot read the notifications file \(path) (NOTIFY_CONFIG)")
            }
            let result = NotifyConfig.parse(yaml: String(decoding: data, as: UTF8.self), environment: environment)
            guard let parsed = result.config else {
                let first = result.problems.first.map(String.init(describing:)) ?? "invalid"
                let more = result.problems.count > 1 ? " (and \(result.problems.count - 1) more; run `tocsin notify check \(path)`)" : ""
                throw Configuration.Error("invalid notifications file \(path): \(first)\(more)")
            }
            return parsed
        }
        if let url = config.slackWebhookURL {
            guard let components = URLComponents(string: url), ["http", "https"].contains(components.scheme ?? "") else {
                throw Configuration.Error("SLACK_WEBHOOK_URL must be an http(s) URL")
            }
            return .slackOnly(url: url)
        }
        return .empty
    }
}
