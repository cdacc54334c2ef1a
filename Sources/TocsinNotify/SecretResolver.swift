import Foundation
import TocsinCore

/// A channel with its secrets resolved in this process: what a sender
/// needs to deliver.
public struct ResolvedChannel: Sendable, Equatable {
    public var name: String
    public var kind: NotifyConfig.Channel.Kind
    public var url: String?
    public var secret: String?
    public var routingKey: String?
    public var smtpURL: String?
    public var username: String?
    public var password: String?
    public var from: String?
    public var to: [String]
    public var startTLS: NotifyConfig.Channel.StartTLS
    public var tlsCAFile: String?
    public var signature: NotifyConfig.Channel.Signature?
    public var ratePerSecond: Double
    public var burst: Int
    /// Redacted, for logs and errors.
    public var destination: String
}

/// Resolves the secret references of the applied configuration: `$VAR`
/// from this process's environment, and values held locally by the
/// process that applied a file with inline secrets (`tocsin run`). Only
/// dispatchers resolve secrets; the API never holds any.
public struct SecretResolver: Sendable {
    public let environment: [String: String]
    public let localSecrets: [String: String]

    public init(environment: [String: String] = ProcessInfo.processInfo.environment, localSecrets: [String: String] = [:]) {
        self.environment = environment
        self.localSecrets = localSecrets
    }

    public enum Unresolved: Error, CustomStringConvertible, Equatable {
        case missing(channel: String, field: String, reference: String)
        public var description: String {
            switch self {
            case .missing(let channel, let field, let reference):
                "channel \(channel): \(field) \(reference) is not available in this process"
            }
        }
    }

    func value(_ reference: SecretReference?, channel: String, field: String) throws -> String? {
        switch reference {
        case nil: return nil
        case .inline(let value): return value
        case .environment(let name):
            guard let value = environment[name], !value.isEmpty else {
                throw Unresolved.missing(channel: channel, field: field, reference: "$\(name)")
            }
            return value
        case .local(let key):
            guard let value = localSecrets[key] else {
                throw Unresolved.missing(channel: channel, field: field, reference: "(held by the process that applied it)")
            }
            return value
        }
    }

    public func resolve(_ channel: NotifyConfig.Channel) throws -> ResolvedChannel {
        let name = channel.name
        return ResolvedChannel(
            name: name, kind: channel.kind, url: try value(channel.url, channel: name, field: "url"),
            secret: try value(channel.secret, channel: name, field: "secret"),
            routingKey: try value(channel.routingKey, channel: name, field: "routing_key"),
            smtpURL: try value(channel.smtpURL, channel: name, field: "smtp_url"), username: channel.username,
            password: try value(channel.password, channel: name, field: "password"), from: channel.from, to: channel.to,
            startTLS: channel.startTLS, tlsCAFile: channel.tlsCAFile, signature: channel.signature,
            ratePerSecond: channel.ratePerSecond,
            burst: channel.burst, destination: channel.destination)
    }

    /// The channels of `config` this process can deliver to, and the
    /// reasons it cannot deliver to the others.
    public func deliverable(_ config: NotifyConfig) -> (channels: [String: ResolvedChannel], unresolved: [Unresolved]) {
        var channels: [String: ResolvedChannel] = [:]
        var unresolved: [Unresolved] = []
        for channel in config.channels {
            do {
                channels[channel.name] = try resolve(channel)
            } catch let error as Unresolved {
                unresolved.append(error)
            } catch {}
        }
        return (channels, unresolved)
    }
}
