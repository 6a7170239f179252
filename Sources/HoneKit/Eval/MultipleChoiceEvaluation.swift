import Foundation

/// lm-eval's `--limit`: the first N documents of each task, or (below 1) that fraction of each task's documents,
/// rounded up.
public enum DocumentLimit: Sendable, Equatable, CustomStringConvertible {
    case first(Int)
    case fraction(Double)

    /// `--limit` as lm-eval reads it: a whole count of at least 1, or a fraction in (0, 1).
    public init?(_ text: String) {
        if let count = Int(text) {
            guard count >= 1 else { return nil }
            self = .first(count)
        } else if let fraction = Double(text), fraction > 0, fraction < 1 {
            self = .fraction(fraction)
        } else {
            return nil
        }
    }

    /// How many of a task's `total` documents are evaluated.
    public func documents(of total: Int) -> Int {
        switch self {
        case .first(let count): return min(count, total)
        case .fraction(let fraction): return min(total, Int((Double(total) * fraction).rounded(.up)))
        }
    }

    public var description: String {
        switch self {
        case .first(let count): return String(count)
        case .fraction(let fraction): return String(fraction)
        }
    }
}

/// `hone eval`'s tasks: which files each task reads, presets, per-document metrics, lm-eval's aggregation and
/// standard errors, and the outputs (results.json, samples_<task>.jsonl, a Markdown table).
public enum MultipleChoiceEvaluation {
    // MARK: - Task names and presets

    /// A column of the table: a task (or group) and one of its metrics ("acc" or "acc_norm").
    public struct Column: Sendable, Equatable {
        public let task: String
        public let metric: String
        public var header: String { task == "truthfulqa_mc2" ? "truthfulqa_mc2 (mc2)" : "\(task) \(metric)" }
    }

    /// What a `tasks` list asks for: leaf tasks in order, the groups to report, the few-shot count of each leaf
    /// task, and the table's columns.
    public struct Selection: Sendable {
        public var leafTasks: [String] = []
        public var groups: [String] = []
        public var fewShot: [String: Int] = [:]
        public var columns: [Column] = []
    }

    public static let basicTasks = ["arc_easy", "arc_challenge", "hellaswag", "piqa", "truthfulqa_mc1", "truthfulqa_mc2"]
    public static let mmluGroups = ["mmlu_stem", "mmlu_other", "mmlu_social_sciences", "mmlu_humanities"]
    /// Presets: (task, metric, few-shot count).
    public static let presets: [String: [(String, String, Int)]] = [
        "seed-table": [("arc_challenge", "acc_norm", 0), ("piqa", "acc_norm", 0), ("hellaswag", "acc_norm", 0),
                       ("mmlu", "acc", 0), ("truthfulqa_mc2", "acc", 0)],
        "open-llm-v1": [("arc_challenge", "acc_norm", 25), ("hellaswag", "acc_norm", 10), ("mmlu", "acc", 5),
                        ("truthfulqa_mc2", "acc", 0)],
    ]

    /// Every name `tasks` accepts.
    public static var knownNames: [String] {
        presets.keys.sorted() + basicTasks + ["mmlu"] + mmluGroups + MultipleChoiceData.mmluSubjects.map { "mmlu_" + $0.subject }
    }

    /// Leaf tasks of a name (a group expands to its subjects).
    static func leaves(of name: String) -> [String]? {
        if basicTasks.contains(name) { return [name] }
        if name == "mmlu" { return MultipleChoiceData.mmluSubjects.map { "mmlu_" + $0.subject } }
        if mmluGroups.contains(name) {
            let group = String(name.dropFirst("mmlu_".count))
            return MultipleChoiceData.mmluSubjects.filter { $0.group == group }.map { "mmlu_" + $0.subject }
        }
        if MultipleChoiceData.mmluSubjects.contains(where: { "mmlu_" + $0.subject == name }) { return [name] }
        return nil
    }

    /// Parses a comma-separated task list (names, groups, presets). `numFewShot` applies to tasks outside presets,
    /// except TruthfulQA, whose configuration fixes 0 (lm-eval ignores a requested count there too).
    public static func select(_ list: String, numFewShot: Int?) throws -> Selection {
        var selection = Selection()
        func add(_ name: String, metric: String?, shots: Int?) throws {
            guard let leaves = leaves(of: name) else {
                throw HoneError.invalidArgument("unknown task '\(name)' in \(OptionName("tasks")) (known: \(knownNames.filter { !$0.hasPrefix("mmlu_") || mmluGroups.contains($0) }.joined(separator: ", ")), mmlu_<subject>)")
            }
            for leaf in leaves where !selection.leafTasks.contains(leaf) {
                selection.leafTasks.append(leaf)
                selection.fewShot[leaf] = leaf.hasPrefix("truthfulqa") ? 0 : (shots ?? 0)
            }
            if name == "mmlu" {
                for group in ["mmlu"] + mmluGroups where !selection.groups.contains(group) { selection.groups.append(group) }
            } else if mmluGroups.contains(name), !selection.groups.contains(name) {
                selection.groups.append(name)
            }
            let metrics = metric.map { [$0] } ?? (["arc_easy", "arc_challenge", "hellaswag", "piqa"].contains(name) ? ["acc", "acc_norm"] : ["acc"])
            for metric in metrics where !selection.columns.contains(Column(task: name, metric: metric)) {
                selection.columns.append(Column(task: name, metric: metric))
            }
        }
        let names = list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !names.isEmpty else { throw HoneError.invalidArgument("\(OptionName("tasks")) is empty") }
        for name in names {
            if let preset = presets[name] {
                for (task, metric, shots) in preset { try add(task, metric: metric, shots: shots) }
            } else {
                try add(name, metric: nil, shots: numFewShot)
            }
        }
        return selection
    }

    /// The few-shot seed of lm-eval's `--seed` value: one integer for all four seeds (Python, NumPy, torch,
    /// few-shot), or up to four comma-separated ones, "None" or a missing fourth keeping the default (1234). The
    /// few-shot seed is the only one a multiple-choice evaluation uses.
    public static func fewShotSeed(lmEvalSeed text: String) throws -> Int {
        let items = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        func parse(_ item: String) throws -> Int? {
            if item.lowercased() == "none" { return nil }
            guard let value = Int(item) else {
                throw HoneError.invalidArgument("\(OptionName("seed")) \(text): '\(item)' is not an integer or None")
            }
            return value
        }
        switch items.count {
        case 1: return try parse(items[0]) ?? MultipleChoiceTask.defaultSeed
        case 3: _ = try items.map(parse); return MultipleChoiceTask.defaultSeed
        case 4: _ = try items.map(parse); return try parse(items[3]) ?? MultipleChoiceTask.defaultSeed
        default:
            throw HoneError.invalidArgument("\(OptionName("seed")) \(text): give one integer or 3 to 4 comma-separated values (Python, NumPy, torch, few-shot)")
        }
    }

    /// `tasks` with their seeded few-shot samplers set to `seed` (MMLU's first-n sampler has none).
    public static func withFewShotSeed(_ seed: Int, _ tasks: [MultipleChoiceTask]) -> [MultipleChoiceTask] {
        tasks.map { task in
            var task = task
            if case .seeded = task.sampler { task.sampler = .seeded(seed) }
            return task
        }
    }

    // MARK: - Loading a task's files

    /// Loads a leaf task from `directory` (the layout of `mc_eval/`: arc/, piqa/, hellaswag/, mmlu/{dev,test}/,
    /// truthfulqa/; or Hugging Face exports named CONFIG/SPLIT.jsonl or SPLIT.jsonl in the same folders, MMLU's
    /// as one file for all subjects or one per subject). A missing file is named in the error.
    public static func loadTask(_ name: String, directory: String) throws -> MultipleChoiceTask {
        func path(_ parts: String...) -> String { ([directory] + parts).joined(separator: "/") }
        func firstExisting(_ candidates: [String]) -> String? { candidates.first { FileManager.default.fileExists(atPath: $0) } }
        func required(_ candidates: [String]) throws -> String {
            guard let found = firstExisting(candidates) else { throw HoneError.fileNotFound(path: candidates[0]) }
            return found
        }
        // A task of no documents has no score: an empty MMLU subject in a group trapped aggregating it, and alone
        // it printed "–" with exit 0.
        func documents(_ read: [MultipleChoiceDocument], from file: String) throws -> [MultipleChoiceDocument] {
            guard !read.isEmpty else { throw HoneError.malformedFile(path: file, message: "no documents for \(name)") }
            return read
        }
        switch name {
        case "arc_easy", "arc_challenge":
            let set = name == "arc_easy" ? "ARC-Easy" : "ARC-Challenge"
            let test = try required([path("arc", "\(set)-test.jsonl"), path("arc", "\(set)-test.json"), path("arc", set, "test.jsonl")])
            // lm-eval draws ARC's shots from the train split; without it, from the test split minus the document.
            let train = firstExisting([path("arc", "\(set)-train.jsonl"), path("arc", "\(set)-train.json"), path("arc", set, "train.jsonl")])
            return MultipleChoiceTask(name: name, documents: try documents(MultipleChoiceData.readARC(path: test), from: test),
                                      fewShotPool: try train.map(MultipleChoiceData.readARC))
        case "piqa":
            let valid = try required([path("piqa", "valid.jsonl"), path("piqa", "validation.jsonl")])
            let labels = firstExisting([path("piqa", "valid-labels.lst")])
            let train = firstExisting([path("piqa", "train.jsonl")])
            let trainLabels = firstExisting([path("piqa", "train-labels.lst")])
            return MultipleChoiceTask(name: name, documents: try documents(MultipleChoiceData.readPIQA(path: valid, labelsPath: labels), from: valid),
                                      fewShotPool: try train.map { try MultipleChoiceData.readPIQA(path: $0, labelsPath: trainLabels) })
        case "hellaswag":
            let train = firstExisting([path("hellaswag", "hellaswag_train.jsonl"), path("hellaswag", "train.jsonl")])
            let pool = try train.map(MultipleChoiceData.readHellaSwagJSONL)
            if let jsonl = firstExisting([path("hellaswag", "hellaswag_val.jsonl"), path("hellaswag", "hellaswag_val.jsonl.gz"),
                                          path("hellaswag", "validation.jsonl")]) {
                return MultipleChoiceTask(name: name, documents: try documents(MultipleChoiceData.readHellaSwagJSONL(path: jsonl), from: jsonl), fewShotPool: pool)
            }
            let text = try required([path("hellaswag", "hellaswag_val_full.txt.gz"), path("hellaswag", "hellaswag_val_full.txt")])
            return MultipleChoiceTask(name: name, documents: try documents(MultipleChoiceData.readHellaSwagText(path: text), from: text), fewShotPool: pool,
                                      note: "hellaswag: read from llama.cpp's text rendering (\((text as NSString).lastPathComponent)), whose ctx_b is not capitalised; lm-eval's prompts and metrics apply, figures can differ slightly from lm-eval on the original hellaswag_val.jsonl")
        case "truthfulqa_mc1", "truthfulqa_mc2":
            let file = try required([path("truthfulqa", "mc_task.json"), path("truthfulqa", "validation.jsonl"),
                                     path("truthfulqa", "multiple_choice.jsonl")])
            let mc = name == "truthfulqa_mc1" ? 1 : 2
            return MultipleChoiceTask(name: name, documents: try documents(MultipleChoiceData.readTruthfulQA(path: file, mc: mc), from: file),
                                      metrics: [.acc], isMC2: mc == 2)
        default:
            guard name.hasPrefix("mmlu_"), let entry = MultipleChoiceData.mmluSubjects.first(where: { "mmlu_" + $0.subject == name }) else {
                throw HoneError.invalidArgument("unknown task '\(name)' in \(OptionName("tasks"))")
            }
            // MMLU's CSVs, or the HF `cais/mmlu` export: one subject's file, or the "all" configuration's.
            func split(_ split: String) throws -> (documents: [MultipleChoiceDocument], file: String) {
                let subject = entry.subject
                let csv = path("mmlu", split, "\(subject)_\(split).csv")
                if FileManager.default.fileExists(atPath: csv) { return (try MultipleChoiceData.readMMLU(path: csv), csv) }
                if let file = firstExisting([path("mmlu", split, "\(subject)_\(split).jsonl"), path("mmlu", subject, "\(split).jsonl")]) {
                    return (try MultipleChoiceData.readMMLUExport(path: file), file)
                }
                guard let all = firstExisting([path("mmlu", "\(split).jsonl")]) else {
                    // Name the file of the layout the folder uses.
                    let subjectFolder = path("mmlu", subject)
                    let missing = FileManager.default.fileExists(atPath: subjectFolder) ? path("mmlu", subject, "\(split).jsonl")
                        : firstExisting([path("mmlu", "test.jsonl"), path("mmlu", "dev.jsonl")]) != nil ? path("mmlu", "\(split).jsonl") : csv
                    throw HoneError.fileNotFound(path: missing)
                }
                return (try mmluExports.subject(subject, of: all), all)
            }
            let test = try split("test"), dev = try split("dev")
            let description = "The following are multiple choice questions (with answers) about \(entry.subject.replacingOccurrences(of: "_", with: " ")).\n\n"
            return MultipleChoiceTask(name: name, documents: try documents(test.documents, from: test.file),
                                      fewShotPool: dev.documents, sampler: .firstN,
                                      description: description, metrics: [.acc], group: "mmlu_" + entry.group)
        }
    }

    /// The "all" export files of MMLU, each read once per process for all 57 subjects (keyed by path, size and
    /// modification date, so a rewritten file is read again).
    private static let mmluExports = MMLUExportFiles()

    private final class MMLUExportFiles: @unchecked Sendable {
        private let lock = NSLock()
        private var files: [String: (stamp: String, bySubject: [String: [MultipleChoiceDocument]])] = [:]

        func subject(_ subject: String, of path: String) throws -> [MultipleChoiceDocument] {
            let attributes = try? FileManager.default.attributesOfItem(atPath: path)
            let stamp = "\(attributes?[.size] ?? "")|\(attributes?[.modificationDate] ?? "")"
            lock.lock()
            defer { lock.unlock() }
            if let cached = files[path], cached.stamp == stamp { return cached.bySubject[subject] ?? [] }
            let bySubject = try MultipleChoiceData.readMMLUExportBySubject(path: path)
            files[path] = (stamp, bySubject)
            return bySubject[subject] ?? []
        }
    }

    // MARK: - Per-document metrics

    /// lm-eval's `process_results` for multiple choice: acc = argmax(ll) == gold; acc_norm = argmax(ll / len(choice))
    /// with len in characters (Unicode scalars, as Python's len); mc2 = Σ_true p / Σ p with p = exp(ll).
    /// argmax takes the first maximum (numpy).
    public static func documentMetrics(task: MultipleChoiceTask, document: MultipleChoiceDocument,
                                       loglikelihoods: [Double]) -> [String: Double] {
        func argmax(_ values: [Double]) -> Int {
            var best = 0
            for index in values.indices where values[index] > values[best] { best = index }
            return best
        }
        if task.isMC2, let labels = document.labels {
            // exp(ll) normalised; shifting by the maximum changes nothing but avoids underflow to 0/0.
            let top = loglikelihoods.max() ?? 0
            let weights = loglikelihoods.map { exp($0 - top) }
            let total = weights.reduce(0, +)
            let trueMass = zip(weights, labels).filter { $0.1 == 1 }.reduce(0.0) { $0 + $1.0 }
            return ["acc": trueMass / total]
        }
        var metrics: [String: Double] = [:]
        for metric in task.metrics {
            switch metric {
            case .acc:
                metrics["acc"] = argmax(loglikelihoods) == document.gold ? 1 : 0
            case .accNorm:
                let normalised = zip(loglikelihoods, document.choices).map { $0 / Double($1.unicodeScalars.count) }
                metrics["acc_norm"] = argmax(normalised) == document.gold ? 1 : 0
            }
        }
        return metrics
    }

    // MARK: - Running

    /// Results of one leaf task for one model variant.
    public struct TaskResult: Sendable {
        public let task: MultipleChoiceTask
        public let fewShot: Int
        public let requests: [MultipleChoiceTask.Request]
        public let scores: [[MultipleChoiceScorer.ChoiceScore]]
        public let documentMetrics: [[String: Double]]
        /// metric → (mean, standard error or nil when n ≤ 1, as lm-eval's "N/A").
        public let aggregates: [String: (value: Double, stderr: Double?)]
        public var count: Int { requests.count }
    }

    /// Scores the first `limit` documents of every task. `progress(done, total)` counts documents.
    public static func run(tasks: [MultipleChoiceTask], fewShot: [String: Int], limit: DocumentLimit?, scorer: MultipleChoiceScorer,
                           format: MultipleChoiceTask.PromptFormat = .plain,
                           progress: ((Int, Int) -> Void)? = nil) throws -> [TaskResult] {
        let prepared = try tasks.map { task in
            (task, try task.requests(fewShot: fewShot[task.name] ?? 0, limit: limit?.documents(of: task.documents.count), format: format))
        }
        let total = prepared.reduce(0) { $0 + $1.1.count }
        var done = 0
        return try prepared.map { task, requests in
            let base = done
            let scores = try scorer.score(requests, origins: task.documents.prefix(requests.count).map(\.origin)) { finished in
                progress?(base + finished, total)
            }
            done += requests.count
            var perDocument: [[String: Double]] = []
            for (index, choiceScores) in scores.enumerated() {
                let loglikelihoods = choiceScores.map(\.loglikelihood)
                if let bad = loglikelihoods.firstIndex(where: { !$0.isFinite }) {
                    throw HoneError.nonFinite(message: "evaluation stopped: \(task.documents[index].origin): choice \(bad) has a non-finite log-likelihood")
                }
                perDocument.append(documentMetrics(task: task, document: task.documents[index], loglikelihoods: loglikelihoods))
            }
            var aggregates: [String: (Double, Double?)] = [:]
            for metric in perDocument.first?.keys.sorted() ?? [] {
                aggregates[metric] = meanAndStderr(perDocument.map { $0[metric] ?? 0 })
            }
            return TaskResult(task: task, fewShot: fewShot[task.name] ?? 0, requests: requests, scores: scores,
                              documentMetrics: perDocument, aggregates: aggregates)
        }
    }

    /// Mean and lm-eval's `mean_stderr` (sample standard deviation with n − 1, over √n); nil stderr for n ≤ 1.
    public static func meanAndStderr(_ values: [Double]) -> (Double, Double?) {
        let n = Double(values.count)
        guard values.count > 0 else { return (.nan, nil) }
        let mean = values.reduce(0, +) / n
        guard values.count > 1 else { return (mean, nil) }
        let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / (n - 1)
        return (mean, variance.squareRoot() / n.squareRoot())
    }

    /// A group's score: the size-weighted mean of its leaf tasks, and lm-eval's pooled standard error
    /// sqrt(Σ (n_i − 1) n_i se_i² / (Σ n_i − k) / Σ n_i); nil when a member has none.
    public static func groupAggregate(_ members: [(value: Double, stderr: Double?, size: Int)]) -> (Double, Double?) {
        let total = members.reduce(0) { $0 + $1.size }
        let value = members.reduce(0.0) { $0 + $1.value * Double($1.size) } / Double(total)
        guard members.allSatisfy({ $0.stderr != nil }), total > members.count else { return (value, nil) }
        let pooled = members.reduce(0.0) { $0 + Double($1.size - 1) * $1.stderr! * $1.stderr! * Double($1.size) }
            / Double(total - members.count)
        return (value, (pooled / Double(total)).squareRoot())
    }

    /// Every reported score of a run: leaf tasks and groups, name → metric → (value, stderr, size).
    public static func scores(_ results: [TaskResult], groups: [String]) -> [String: [String: (value: Double, stderr: Double?, size: Int)]] {
        var table: [String: [String: (Double, Double?, Int)]] = [:]
        for result in results {
            table[result.task.name] = result.aggregates.mapValues { ($0.value, $0.stderr, result.count) }
        }
        for group in groups {
            let members = results.filter { group == "mmlu" ? $0.task.group != nil : $0.task.group == group }
            guard !members.isEmpty else { continue }
            let (value, stderr) = groupAggregate(members.map { ($0.aggregates["acc"]!.value, $0.aggregates["acc"]!.stderr, $0.count) })
            table[group] = ["acc": (value, stderr, members.reduce(0) { $0 + $1.count })]
        }
        return table
    }

    // MARK: - Outputs

    /// lm-eval's results.json shape: results[task]["acc,none"], "acc_stderr,none" ("N/A" when none), groups,
    /// n-shot, n-samples, configs and a config block.
    public static func resultsJSON(_ results: [TaskResult], groups: [String], model: String, adapter: String?,
                                   limit: DocumentLimit?, format: MultipleChoiceTask.PromptFormat = .plain,
                                   fewShotSeed: Int = MultipleChoiceTask.defaultSeed) -> String {
        let table = scores(results, groups: groups)
        func entry(_ name: String, alias: String) -> String {
            var fields = ["\"alias\": \(jsonString(alias))"]
            for (metric, score) in (table[name] ?? [:]).sorted(by: { $0.key < $1.key }) {
                fields.append("\(jsonString(metric + ",none")): \(jsonNumber(score.value))")
                fields.append("\(jsonString(metric + "_stderr,none")): \(score.stderr.map(jsonNumber) ?? "\"N/A\"")")
            }
            if let size = table[name]?.values.first?.size { fields.append("\"sample_len\": \(size)") }
            return "    \(jsonString(name)): {" + fields.joined(separator: ", ") + "}"
        }
        let reportedGroups = groups.filter { table[$0] != nil }
        var lines: [String] = ["{", "  \"results\": {"]
        lines.append((reportedGroups.map { entry($0, alias: $0) } + results.map { entry($0.task.name, alias: $0.task.name) })
            .joined(separator: ",\n"))
        lines.append("  },")
        lines.append("  \"groups\": {")
        lines.append(reportedGroups.map { entry($0, alias: $0) }.joined(separator: ",\n"))
        lines.append("  },")
        func list<T>(_ items: [T], _ render: (T) -> String) -> String { items.map(render).joined(separator: ", ") }
        lines.append("  \"n-shot\": {" + list(results) { "\(jsonString($0.task.name)): \($0.fewShot)" } + "},")
        lines.append("  \"n-samples\": {" + list(results) {
            "\(jsonString($0.task.name)): {\"original\": \($0.task.documents.count), \"effective\": \($0.count)}"
        } + "},")
        lines.append("  \"configs\": {" + list(results) { result in
            let task = result.task
            let sampler: String
            switch task.sampler {
            case .firstN: sampler = "\"first_n\""
            case .seeded(let seed): sampler = "\"default\", \"fewshot_seed\": \(seed)"
            }
            let source = task.fewShotPool == nil ? "evaluation split (document excluded)" : "separate split"
            var fields = ["\"task\": \(jsonString(task.name))", "\"output_type\": \"multiple_choice\"",
                          "\"target_delimiter\": \(jsonString(MultipleChoiceTask.targetDelimiter))",
                          "\"fewshot_delimiter\": \(jsonString(MultipleChoiceTask.fewShotDelimiter))",
                          "\"num_fewshot\": \(result.fewShot)", "\"sampler\": \(sampler)",
                          "\"fewshot_source\": \(jsonString(source))",
                          "\"description\": \(jsonString(task.description))",
                          "\"metric_list\": [" + list(task.isMC2 ? ["acc (mc2)"] : task.metrics.map(\.rawValue)) { jsonString($0) } + "]"]
            if let note = task.note { fields.append("\"note\": \(jsonString(note))") }
            return "\(jsonString(task.name)): {" + fields.joined(separator: ", ") + "}"
        } + "},")
        lines.append("  \"config\": {\"model\": \"hone\", \"model_args\": \(jsonString(model)), \"adapter\": \(adapter.map(jsonString) ?? "null"), \"limit\": \(limit.map(\.description) ?? "null"), \"fewshot_seed\": \(fewShotSeed)},")
        // lm-eval's instruct-formatting keys (null and false without them).
        func textAndHash(_ text: String?) -> (String, String) {
            (text.map(jsonString) ?? "null", text.map { "\"\(SHA256.hash(Array($0.utf8)).hexString)\"" } ?? "null")
        }
        let (instruction, instructionHash) = textAndHash(format.systemInstruction)
        let (template, templateHash) = textAndHash(format.chatTemplate?.source)
        lines.append("  \"system_instruction\": \(instruction),")
        lines.append("  \"system_instruction_sha\": \(instructionHash),")
        lines.append("  \"chat_template\": \(template),")
        lines.append("  \"chat_template_sha\": \(templateHash),")
        lines.append("  \"fewshot_as_multiturn\": \(format.chatTemplate != nil && format.fewShotAsMultiturn)")
        lines.append("}")
        return lines.joined(separator: "\n") + "\n"
    }

    /// One line per document with the fields, order and JSON types of lm-eval's `--log_samples` files, so the two
    /// diff cleanly: doc_id; doc; target as a string; arguments {"gen_args_i": {"arg_0": context, "arg_1":
    /// continuation}}; resps [[[loglikelihood, is_greedy]]] and filtered_resps [[loglikelihood, is_greedy]] per
    /// choice, as the strings Python's str() gives ("-3.25", "True"); filter "none"; metrics (names); doc_hash,
    /// prompt_hash and target_hash (SHA-256 hex of the document's JSON, the first context, str(target)); then
    /// each metric's value as a float. `doc` is Hone's reading of the record (query, choices, gold, labels), not
    /// the HF dataset row lm-eval keeps, so doc and doc_hash are the two fields whose values differ from lm-eval's.
    public static func samplesJSONL(_ result: TaskResult) -> String {
        func hash(_ text: String) -> String { SHA256.hash(Array(text.utf8)).hexString }
        func pythonFloat(_ value: Double) -> String { value.isFinite ? "\(value)" : (value.isNaN ? "NaN" : (value > 0 ? "Infinity" : "-Infinity")) }
        var text = ""
        for (index, request) in result.requests.enumerated() {
            let document = result.task.documents[index]
            var docFields = ["\"query\": \(jsonString(document.query))",
                             "\"choices\": [" + document.choices.map(jsonString).joined(separator: ", ") + "]",
                             "\"gold\": \(document.gold)"]
            if let labels = document.labels { docFields.append("\"labels\": [" + labels.map(String.init).joined(separator: ", ") + "]") }
            let doc = "{" + docFields.joined(separator: ", ") + "}"
            let target = String(document.gold)
            let (loggedContext, loggedContinuations) = request.unsplit
            let arguments = loggedContinuations.enumerated().map { choice, continuation in
                "\"gen_args_\(choice)\": {\"arg_0\": \(jsonString(loggedContext)), \"arg_1\": \(jsonString(continuation))}"
            }
            let pairs = result.scores[index].map { "[\"\(pythonFloat($0.loglikelihood))\", \"\($0.isGreedy ? "True" : "False")\"]" }
            let metrics = result.documentMetrics[index].sorted { $0.key < $1.key }
            var fields = ["\"doc_id\": \(index)", "\"doc\": \(doc)", "\"target\": \(jsonString(target))",
                          "\"arguments\": {" + arguments.joined(separator: ", ") + "}",
                          "\"resps\": [" + pairs.map { "[\($0)]" }.joined(separator: ", ") + "]",
                          "\"filtered_resps\": [" + pairs.joined(separator: ", ") + "]",
                          "\"filter\": \"none\"",
                          "\"metrics\": [" + metrics.map { jsonString($0.key) }.joined(separator: ", ") + "]",
                          "\"doc_hash\": \"\(hash(doc))\"", "\"prompt_hash\": \"\(hash(loggedContext))\"",
                          "\"target_hash\": \"\(hash(target))\""]
            for (metric, value) in metrics { fields.append("\(jsonString(metric)): \(pythonFloat(value))") }
            text += "{" + fields.joined(separator: ", ") + "}\n"
        }
        return text
    }

    /// The Markdown table: one row per model variant, one column per selected score (percent, 2 decimals, ± stderr).
    public static func markdownTable(rows: [(name: String, scores: [String: [String: (value: Double, stderr: Double?, size: Int)]])],
                                     columns: [Column]) -> String {
        var lines = ["| model | " + columns.map(\.header).joined(separator: " | ") + " |",
                     "|---|" + columns.map { _ in "---:|" }.joined()]
        for row in rows {
            let cells = columns.map { column -> String in
                guard let score = row.scores[column.task]?[column.metric] else { return "–" }
                let stderr = score.stderr.map { String(format: " ± %.2f", $0 * 100) } ?? ""
                return String(format: "%.2f", score.value * 100) + stderr
            }
            lines.append("| \(row.name) | " + cells.joined(separator: " | ") + " |")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
