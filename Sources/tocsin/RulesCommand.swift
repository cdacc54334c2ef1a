import ArgumentParser
import Foundation
import TocsinCore
import TocsinEngine
import TocsinStore

struct Rules: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rules",
        abstract: "Check and apply rule files, see their history, backtest rules against stored events.",
        subcommands: [Check.self, Apply.self, History.self, BacktestCommand.self]
    )

    static func interval() throws -> Int {
        try Configuration.fromEnvironment(ProcessInfo.processInfo.environment).alertCheckIntervalSeconds
    }

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a rules file; every problem is reported with its line, rule and field.",
            discussion: """
                With a database (DATABASE_URL or --database-url), also warns about labels a rule groups or \
                filters by that no recent event of its metrics has had. Warnings never fail the check.
                """)

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The rules file (YAML).")
        var file: String

        func run() async throws {
            try await runCommand {
                let result = RuleFile.parse(yaml: try ConfigFiles.read(file), defaultIntervalSeconds: try Rules.interval())
                guard result.problems.isEmpty else { try reportProblems(result.problems, in: file) }
                var warnings = result.warnings
                if try global.configuration().databaseURL != nil {
                    let names = Array(Set(result.rules.flatMap(\.metricNames))).sorted()
                    do {
                        try await withOneShotStore(global) { store in
                            warnings += RuleFile.labelWarnings(result, seen: try await store.events.labelNames(of: names))
                        }
                    } catch {
                        FileHandle.standardError.write(Data("\(file): note: labels not checked against events: \(error)\n".utf8))
                    }
                }
                for warning in warnings.sorted(by: { ($0.line ?? 0) < ($1.line ?? 0) }) {
                    FileHandle.standardError.write(Data("\(file):\(warning.line.map(String.init) ?? "?"): warning: \(warning)\n".utf8))
                }
                print("\(file): \(result.rules.count) rule(s) OK: \(result.rules.map(\.name).joined(separator: ", "))"
                      + (warnings.isEmpty ? "" : " (\(warnings.count) warning(s))"))
            }
        }
    }

    struct Apply: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a rules file and apply it: the database's rules become the file's, as a new version.",
            discussion: """
                Rules not in the file are disabled (never deleted: their alerts keep them). Nothing changes \
                when the file is invalid, and no version is made when it changes nothing. Workers pick the \
                new rules up at their next scheduling round.
                """)

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The rules file (YAML).")
        var file: String

        @Option(name: .customLong("by"), help: "Who applies it, for the history (default: user@host).")
        var by: String?

        func run() async throws {
            try await runCommand {
                let rules = try ConfigFiles.rules(file, intervalSeconds: try Rules.interval())
                try await withOneShotStore(global) { store in
                    let outcome = try await store.rules.apply(rules, appliedBy: by ?? ConfigFiles.defaultActor, source: file)
                    ConfigFiles.report(outcome, what: "\(file): \(rules.count) rule(s)")
                }
            }
        }
    }

    struct History: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the applied versions of the rules: who, when, what changed.")

        @OptionGroup var global: GlobalOptions

        @Option(name: .customLong("limit"), help: "How many versions, newest first (default 20).")
        var limit: Int = 20

        func run() async throws {
            try await runCommand {
                guard (1...1000).contains(limit) else { throw CLIError("--limit must be from 1 to 1000") }
                try await withOneShotStore(global) { store in
                    printHistory(try await store.config.versions(.rules, limit: limit))
                }
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
                let config = try global.configuration()
                let rules = try ConfigFiles.rules(file, intervalSeconds: config.alertCheckIntervalSeconds)
                guard let rule = rules.first(where: { $0.name == self.rule }) else {
                    throw CLIError("no rule named \(self.rule) in \(file)")
                }
                try await withOneShotStore(global) { store in
                    let range: TimeRange
                    do {
                        range = try TimeRange.parse(window: nil, since: since, until: until, now: store.clock.now(),
                                                    maxSeconds: Double(BacktestRunner.maxDays * 86_400))
                    } catch {
                        throw CLIError("invalid range: \(error)")
                    }
                    let runner = BacktestRunner(store: store, retentionDays: config.metricsRetentionDays)
                    do {
                        print(Self.table(rule: rule, try await runner.run(rule, range: range, keyID: 0, rules: rules)))
                    } catch let refusal as BacktestRunner.Refusal {
                        throw CLIError(refusal.description)
                    }
                }
            }
        }

        static func table(rule: Rule, _ result: Backtest.Result) -> String {
            var title = "rule \(rule.name): \(result.evaluations) evaluation(s) every \(DurationText.format(rule.intervalSeconds)), \(result.alerts.count) alert(s)"
            if result.tooManyGroups > 0 {
                title += "; \(result.tooManyGroups) evaluation(s) failed with too_many_groups (more than \(rule.maxGroups) groups)"
            }
            let rows = result.steps.map { step in
                [RFC3339.format(step.at), step.groupKey.isEmpty ? "-" : step.groupKey,
                 step.transition.rawValue + (step.resolution.map { " (\($0.rawValue))" } ?? ""),
                 step.value.map { String(format: "%.4g", $0) } ?? "no data", String(step.samples)]
            }
            let header = rule.kind == .composite ? "HOLDS" : rule.kind == .slo ? "BURN RATE" : "VALUE"
            return title + "\n" + TextTable.render([["AT", "GROUP", "TRANSITION", header, "SAMPLES"]] + rows)
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

/// Applied versions, newest first, with their diffs.
func printHistory(_ versions: [ConfigVersion]) {
    guard !versions.isEmpty else {
        print("nothing applied yet")
        return
    }
    for version in versions {
        print("version \(version.version)  \(RFC3339.format(version.appliedAt))  by \(version.appliedBy)  from \(version.source)")
        for line in version.diff { print("  \(line)") }
    }
}

/// Opens the store for a one-shot command (one connection, schema checked)
/// and closes it afterwards.
func withOneShotStore(_ global: GlobalOptions, _ body: (Store) async throws -> Void) async throws {
    var config = try global.configuration()
    config.databasePoolSize = 1
    config.readPoolSize = 1
    let logger = LoggingSetup.bootstrap(config)
    let runtime = try await Runtime.open(config: config, logger: logger, migrate: false, roles: [])
    do {
        try await body(runtime.store)
        await runtime.store.close()
    } catch {
        await runtime.store.close()
        throw error
    }
}
