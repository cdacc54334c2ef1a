import ArgumentParser
import Foundation
import TocsinCore
import TocsinStore

struct Rules: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rules",
        abstract: "Check rule files and backtest rules against stored events.",
        subcommands: [Check.self, BacktestCommand.self]
    )

    static func read(_ path: String, intervalSeconds: Int) throws -> RuleFile.Result {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CLIError("cannot read \(path)")
        }
        return RuleFile.parse(yaml: String(decoding: data, as: UTF8.self), defaultIntervalSeconds: intervalSeconds)
    }

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a rules file; every problem is reported with its line, rule and field.")

        @Argument(help: "The rules file (YAML).")
        var file: String

        func run() async throws {
            try await runCommand {
                let interval = try Configuration.fromEnvironment(ProcessInfo.processInfo.environment).alertCheckIntervalSeconds
                let result = try Rules.read(file, intervalSeconds: interval)
                if result.problems.isEmpty {
                    print("\(file): \(result.rules.count) rule(s) OK: \(result.rules.map(\.name).joined(separator: ", "))")
                    return
                }
                try reportProblems(result.problems, in: file)
            }
        }
    }

    struct BacktestCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "backtest",
            abstract: "Replay a rule of FILE over the stored events and print the alerts it would have raised.")

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The rules file (YAML).")
        var file: String

        @Option(name: .customLong("rule"), help: "The rule's name in the file.")
        var rule: String

        @Option(name: .customLong("since"), help: "Start, RFC 3339 (e.g. 2026-11-28T00:00:00Z).")
        var since: String

        @Option(name: .customLong("until"), help: "End, RFC 3339 (default: now).")
        var until: String?

        func run() async throws {
            try await runCommand {
                var config = try global.configuration()
                let result = try Rules.read(file, intervalSeconds: config.alertCheckIntervalSeconds)
                if let first = result.problems.first {
                    throw CLIError("invalid rules file \(file): \(first)")
                }
                guard let rule = result.rules.first(where: { $0.name == self.rule }) else {
                    throw CLIError("no rule named \(self.rule) in \(file)")
                }
                config.databasePoolSize = 1
                let logger = LoggingSetup.bootstrap(config)
                let store = try await openStore(config: config, logger: logger, migrate: false)
                do {
                    let range: TimeRange
                    do {
                        range = try TimeRange.parse(window: nil, since: since, until: until, now: store.clock.now(),
                                                    maxSeconds: 31 * 86_400)
                    } catch {
                        throw CLIError("invalid range: \(error)")
                    }
                    let outcome = try await store.metricReads.backtest(rule, range: range)
                    await store.pool.close()
                    print(Self.table(rule: rule, outcome))
                } catch {
                    await store.pool.close()
                    throw error
                }
            }
        }

        static func table(rule: Rule, _ result: Backtest.Result) -> String {
            var lines = ["rule \(rule.name): \(result.evaluations) evaluation(s) every \(DurationText.format(rule.intervalSeconds)), \(result.alerts.count) alert(s)"]
            let header = ["AT", "GROUP", "TRANSITION", "VALUE", "SAMPLES"]
            let rows = result.steps.map { step in
                [RFC3339.format(step.at), step.groupKey.isEmpty ? "-" : step.groupKey,
                 step.transition.rawValue + (step.resolution.map { " (\($0.rawValue))" } ?? ""),
                 step.value.map { String(format: "%.4g", $0) } ?? "no data", String(step.samples)]
            }
            let all = [header] + rows
            let widths = (0..<header.count).map { c in all.map { $0[c].count }.max() ?? 0 }
            for row in all {
                lines.append(zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }
                    .joined(separator: "  ").trimmingCharacters(in: .whitespaces))
            }
            return lines.joined(separator: "\n")
        }
    }
}

/// Prints each problem as `FILE:LINE: …` on stderr and exits with 1.
func reportProblems(_ problems: [RuleProblem], in file: String) throws -> Never {
    for problem in problems {
        FileHandle.standardError.write(Data("\(file):\(problem.line.map(String.init) ?? "?"): \(problem)\n".utf8))
    }
    throw ExitCode(1)
}
