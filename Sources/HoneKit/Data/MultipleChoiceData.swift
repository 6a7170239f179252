import Foundation

/// One multiple-choice question as lm-evaluation-harness sees it after `process_docs`: the text `doc_to_text`
/// renders, the choice strings of `doc_to_choice`, and the gold index of `doc_to_target`.
public struct MultipleChoiceDocument: Sendable, Equatable {
    /// lm-eval's `doc_to_text` (without description or few-shot examples).
    public var query: String
    /// lm-eval's `doc_to_choice`, without the target delimiter.
    public var choices: [String]
    /// Index of the correct choice (`doc_to_target`).
    public var gold: Int
    /// TruthfulQA mc2: 1 for every true answer, 0 for the others (same order as `choices`).
    public var labels: [Int]?
    /// Where the record came from, for messages: "file:line".
    public var origin: String

    public init(query: String, choices: [String], gold: Int, labels: [Int]? = nil, origin: String = "") {
        self.query = query
        self.choices = choices
        self.gold = gold
        self.labels = labels
        self.origin = origin
    }
}

// MARK: - Readers for the benchmark files

/// Readers for the public files of ARC, PIQA, HellaSwag, MMLU and TruthfulQA, in the layouts their releases (or the
/// Hugging Face exports lm-eval reads) use. Every problem is reported as one line naming file, record and field.
public enum MultipleChoiceData {
    // MARK: ARC

    /// ARC in the Hugging Face `ai2_arc` layout (JSONL or a JSON array): `question`, `choices.text`,
    /// `choices.label`, `answerKey`. Prompt "Question: {question}\nAnswer:", gold = label index of answerKey.
    public static func readARC(path: String) throws -> [MultipleChoiceDocument] {
        try records(path: path).map { record in
            let question: String = try field(record, "question", path: path)
            let choices: [String: Any] = try field(record, "choices", path: path)
            guard let texts = choices["text"] as? [Any], let labels = choices["label"] as? [Any] else {
                throw HoneError.malformedRecord(path: path, line: record.line,
                                                message: "field \"choices\" must hold \"text\" and \"label\" arrays")
            }
            let textStrings = try texts.map { item -> String in
                guard let text = item as? String else {
                    throw HoneError.malformedRecord(path: path, line: record.line, message: "field \"choices.text\" must hold strings")
                }
                return text
            }
            let labelStrings = labels.map { item -> String in (item as? String) ?? jsonInteger(item).map(String.init) ?? "" }
            guard labelStrings.count == textStrings.count else {
                throw HoneError.malformedRecord(path: path, line: record.line, message: "field \"choices\" has \(textStrings.count) texts but \(labelStrings.count) labels")
            }
            guard textStrings.count >= 2 else {
                throw HoneError.malformedRecord(path: path, line: record.line, message: "field \"choices\" has \(textStrings.count) choice; a question needs at least 2")
            }
            let answer: String = try field(record, "answerKey", path: path)
            guard let gold = labelStrings.firstIndex(of: answer) else {
                throw HoneError.malformedRecord(path: path, line: record.line,
                                                message: "field \"answerKey\" (\(answer)) is not one of \"choices.label\" \(labelStrings)")
            }
            return MultipleChoiceDocument(query: "Question: \(question)\nAnswer:", choices: textStrings, gold: gold,
                                          origin: "\(path):\(record.line)")
        }
    }

    // MARK: PIQA

    /// PIQA: `goal`, `sol1`, `sol2` per line, with the gold either in a `label` field (the HF export) or on the same
    /// line of a labels file (the authors' release: `valid.jsonl` + `valid-labels.lst`).
    public static func readPIQA(path: String, labelsPath: String?) throws -> [MultipleChoiceDocument] {
        let items = try records(path: path)
        var labels: [Int]? = nil
        if let labelsPath {
            let text = String(decoding: try readInputFile(path: labelsPath), as: UTF8.self)
            // Split on Unicode scalars: "\r\n" is one Character in Swift, so a CRLF file had no "\n" to split on.
            var lines = text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false)
                .map { String($0).trimmingCharacters(in: .whitespacesAndNewlines) }
            while lines.last == "" { lines.removeLast() }
            labels = try lines.enumerated().map { index, line in
                guard let value = Int(line), value == 0 || value == 1 else {
                    throw HoneError.malformedRecord(path: labelsPath, line: index + 1, message: "expected a label 0 or 1, found \"\(line)\"")
                }
                return value
            }
            if labels!.count != items.count {
                throw HoneError.malformedFile(path: labelsPath, message: "\(labels!.count) labels for \(items.count) questions in \(path)")
            }
        }
        return try items.enumerated().map { index, record in
            let goal: String = try field(record, "goal", path: path)
            let first: String = try field(record, "sol1", path: path)
            let second: String = try field(record, "sol2", path: path)
            let gold: Int
            if let labels {
                gold = labels[index]
            } else {
                guard let value = record.object["label"].flatMap(jsonInteger), value == 0 || value == 1 else {
                    throw HoneError.malformedRecord(path: path, line: record.line,
                                                    message: "field \"label\" must be 0 or 1 (or give the labels file)")
                }
                gold = value
            }
            return MultipleChoiceDocument(query: "Question: \(goal)\nAnswer:", choices: [first, second], gold: gold,
                                          origin: "\(path):\(record.line)")
        }
    }

    // MARK: HellaSwag

    /// The original HellaSwag JSONL (`activity_label`, `ctx_a`, `ctx_b`, `endings`, `label`) with lm-eval's
    /// preprocessing: query = preprocess(activity_label + ": " + ctx_a + " " + ctx_b.capitalize()).
    public static func readHellaSwagJSONL(path: String) throws -> [MultipleChoiceDocument] {
        try records(path: path).map { record in
            let activity: String = try field(record, "activity_label", path: path)
            let contextA: String = try field(record, "ctx_a", path: path)
            let contextB: String = try field(record, "ctx_b", path: path)
            guard let endings = record.object["endings"] as? [Any], endings.count >= 2,
                  let endingStrings = endings as? [String] else {
                throw HoneError.malformedRecord(path: path, line: record.line, message: "field \"endings\" must be an array of strings")
            }
            let label = record.object["label"].flatMap { ($0 as? String).flatMap { Int($0) } ?? jsonInteger($0) }
            guard let gold = label, gold >= 0, gold < endingStrings.count else {
                throw HoneError.malformedRecord(path: path, line: record.line, message: "field \"label\" must be an ending index")
            }
            let query = hellaSwagPreprocess(activity + ": " + contextA + " " + pythonCapitalize(contextB))
            return MultipleChoiceDocument(query: query, choices: endingStrings.map(hellaSwagPreprocess), gold: gold,
                                          origin: "\(path):\(record.line)")
        }
    }

    /// llama.cpp's HellaSwag text rendering: 6 lines per item (context, gold 0–3, four endings), already cleaned of
    /// WikiHow markers. lm-eval's preprocessing is applied again (idempotent here); `ctx_b` is not capitalised in
    /// this rendering, so scores can differ slightly from lm-eval on the original JSONL.
    public static func readHellaSwagText(path: String) throws -> [MultipleChoiceDocument] {
        // Lines split on the bytes (a "\r" before the "\n" is dropped): splitting the String by Characters costs
        // more than the evaluation of a few documents, and the file has 60,252 lines.
        let data = try readInputFile(path: path)
        var lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map { line -> String in
            String(decoding: line.last == UInt8(ascii: "\r") ? line.dropLast() : line, as: UTF8.self)
        }
        if lines.last == "" { lines.removeLast() }
        guard lines.count % 6 == 0 else {
            throw HoneError.malformedFile(path: path, message: "\(lines.count) lines; expected 6 per item (context, label, 4 endings)")
        }
        return try stride(from: 0, to: lines.count, by: 6).map { start in
            guard let gold = Int(lines[start + 1].trimmingCharacters(in: .whitespaces)), (0..<4).contains(gold) else {
                throw HoneError.malformedRecord(path: path, line: start + 2, message: "expected the gold ending 0–3, found \"\(lines[start + 1])\"")
            }
            return MultipleChoiceDocument(query: hellaSwagPreprocess(lines[start]),
                                          choices: lines[(start + 2)..<(start + 6)].map(hellaSwagPreprocess), gold: gold,
                                          origin: "\(path):\(start + 1)")
        }
    }

    /// lm-eval's HellaSwag cleaning: strip, " [title]" → ". ", drop "[...]" markers (`re.sub("\\[.*?\\]", "")`: from
    /// a "[" to the first "]" on the same line), "  " → " " (once, as Python's `str.replace` does: non-overlapping
    /// left to right). Every pattern is ASCII, so the steps work on UTF-8 bytes (an ASCII byte never occurs inside
    /// a multi-byte character); Foundation's string search and regex took seconds over the 10,042 validation items.
    public static func hellaSwagPreprocess(_ text: String) -> String {
        let (space, open, close, newline) = (UInt8(ascii: " "), UInt8(ascii: "["), UInt8(ascii: "]"), UInt8(ascii: "\n"))
        let title = Array(" [title]".utf8)
        let input = Array(pythonStrip(text).utf8)
        // 1. " [title]" → ". "
        var titled: [UInt8] = []
        titled.reserveCapacity(input.count)
        var index = 0
        while index < input.count {
            if input[index] == space, index + title.count <= input.count, input[index..<(index + title.count)].elementsEqual(title) {
                titled.append(UInt8(ascii: "."))
                titled.append(space)
                index += title.count
            } else {
                titled.append(input[index])
                index += 1
            }
        }
        // 2. "[" … first "]" before any newline → nothing; an unclosed "[" stays.
        var unbracketed: [UInt8] = []
        unbracketed.reserveCapacity(titled.count)
        index = 0
        scan: while index < titled.count {
            if titled[index] == open {
                var end = index + 1
                while end < titled.count, titled[end] != close, titled[end] != newline { end += 1 }
                if end < titled.count, titled[end] == close {
                    index = end + 1
                    continue scan
                }
            }
            unbracketed.append(titled[index])
            index += 1
        }
        // 3. "  " → " ", non-overlapping from the left (three spaces become two).
        var result: [UInt8] = []
        result.reserveCapacity(unbracketed.count)
        index = 0
        while index < unbracketed.count {
            result.append(unbracketed[index])
            index += unbracketed[index] == space && index + 1 < unbracketed.count && unbracketed[index + 1] == space ? 2 : 1
        }
        return String(decoding: result, as: UTF8.self)
    }

    // MARK: MMLU

    /// The 57 MMLU subjects and their lm-eval group (stem, humanities, social_sciences, other).
    public static let mmluSubjects: [(subject: String, group: String)] = {
        let stem = "abstract_algebra anatomy astronomy college_biology college_chemistry college_computer_science college_mathematics college_physics computer_security conceptual_physics electrical_engineering elementary_mathematics high_school_biology high_school_chemistry high_school_computer_science high_school_mathematics high_school_physics high_school_statistics machine_learning"
        let other = "business_ethics clinical_knowledge college_medicine global_facts human_aging management marketing medical_genetics miscellaneous nutrition professional_accounting professional_medicine virology"
        let social = "econometrics high_school_geography high_school_government_and_politics high_school_macroeconomics high_school_microeconomics high_school_psychology human_sexuality professional_psychology public_relations security_studies sociology us_foreign_policy"
        let humanities = "formal_logic high_school_european_history high_school_us_history high_school_world_history international_law jurisprudence logical_fallacies moral_disputes moral_scenarios philosophy prehistory professional_law world_religions"
        var all: [(String, String)] = []
        for (names, group) in [(stem, "stem"), (other, "other"), (social, "social_sciences"), (humanities, "humanities")] {
            all += names.split(separator: " ").map { (String($0), group) }
        }
        return all.sorted { $0.0 < $1.0 }
    }()

    /// One MMLU CSV (no header; question, A, B, C, D, answer letter). Prompt
    /// "{question.strip()}\nA. {A}\nB. {B}\nC. {C}\nD. {D}\nAnswer:", choices A–D.
    public static func readMMLU(path: String) throws -> [MultipleChoiceDocument] {
        let data = try readInputFile(path: path)
        guard let text = String(validating: data, as: UTF8.self) else {
            throw HoneError.malformedFile(path: path, message: "not valid UTF-8 text")
        }
        return try parseCSV(text, path: path).map { line, fields in
            guard fields.count == 6 else {
                throw HoneError.malformedRecord(path: path, line: line, message: "expected 6 fields (question, A, B, C, D, answer), found \(fields.count)")
            }
            guard let gold = ["A", "B", "C", "D"].firstIndex(of: fields[5].trimmingCharacters(in: .whitespaces)) else {
                throw HoneError.malformedRecord(path: path, line: line, message: "field 6 (answer) must be A, B, C or D, found \"\(fields[5])\"")
            }
            let query = "\(pythonStrip(fields[0]))\nA. \(fields[1])\nB. \(fields[2])\nC. \(fields[3])\nD. \(fields[4])\nAnswer:"
            return MultipleChoiceDocument(query: query, choices: ["A", "B", "C", "D"], gold: gold, origin: "\(path):\(line)")
        }
    }

    /// MMLU as the Hugging Face dataset `cais/mmlu` (the one lm-eval reads) exports one subject's split, JSON Lines
    /// or a JSON array: `question`, `choices` (four strings), `answer` (0–3, as its ClassLabel exports; "A"–"D"
    /// also read); other fields (`subject`) are ignored. Same prompt and choices as `readMMLU`.
    public static func readMMLUExport(path: String) throws -> [MultipleChoiceDocument] {
        try records(path: path).map { try mmluExportDocument($0, path: path) }
    }

    /// The export of the "all" configuration (every subject in one file): each record's `subject` is required;
    /// every subject's documents in file order.
    public static func readMMLUExportBySubject(path: String) throws -> [String: [MultipleChoiceDocument]] {
        var bySubject: [String: [MultipleChoiceDocument]] = [:]
        for record in try records(path: path) {
            let subject: String = try field(record, "subject", path: path)
            bySubject[subject, default: []].append(try mmluExportDocument(record, path: path))
        }
        return bySubject
    }

    private static func mmluExportDocument(_ record: JSONLRecord, path: String) throws -> MultipleChoiceDocument {
        let question: String = try field(record, "question", path: path)
        guard let choiceValue = record.object["choices"] else {
            throw HoneError.malformedRecord(path: path, line: record.line, message: "missing field \"choices\"")
        }
        guard let choices = choiceValue as? [String], choices.count == 4 else {
            let found = (choiceValue as? [Any]).map { "\($0.count) values" + ($0 is [String] ? "" : ", not all strings") }
                ?? jsonTypeName(choiceValue)
            throw HoneError.malformedRecord(path: path, line: record.line,
                                            message: "field \"choices\" must be an array of 4 strings, found \(found)")
        }
        guard let answer = record.object["answer"] else {
            throw HoneError.malformedRecord(path: path, line: record.line, message: "missing field \"answer\"")
        }
        let gold = jsonInteger(answer).flatMap { (0...3).contains($0) ? $0 : nil }
            ?? (answer as? String).flatMap { ["A", "B", "C", "D"].firstIndex(of: $0) }
        guard let gold else {
            let found = (answer as? String).map { "\"\($0)\"" } ?? jsonDouble(answer).map(jsonNumber) ?? jsonTypeName(answer)
            throw HoneError.malformedRecord(path: path, line: record.line,
                                            message: "field \"answer\" must be 0–3 (or A–D), found \(found)")
        }
        let query = "\(pythonStrip(question))\nA. \(choices[0])\nB. \(choices[1])\nC. \(choices[2])\nD. \(choices[3])\nAnswer:"
        return MultipleChoiceDocument(query: query, choices: ["A", "B", "C", "D"], gold: gold, origin: "\(path):\(record.line)")
    }

    /// RFC 4180 CSV: quoted fields may hold commas, quotes ("") and line breaks; CRLF or LF line ends. Returns each
    /// record with the 1-based line it starts on.
    static func parseCSV(_ text: String, path: String) throws -> [(line: Int, fields: [String])] {
        var rows: [(Int, [String])] = []
        var fields: [String] = []
        var field = ""
        var inQuotes = false
        var line = 1
        var rowLine = 1
        var scalars = Array(text.unicodeScalars)[...]
        if scalars.first == "\u{FEFF}" { scalars = scalars.dropFirst() }
        var fieldStarted = false
        var index = scalars.startIndex
        func endRow() {
            fields.append(field)
            if !(fields.count == 1 && fields[0].isEmpty && !fieldStarted) { rows.append((rowLine, fields)) }
            fields = []
            field = ""
            fieldStarted = false
        }
        while index < scalars.endIndex {
            let c = scalars[index]
            if inQuotes {
                if c == "\"" {
                    let next = scalars.index(after: index)
                    if next < scalars.endIndex, scalars[next] == "\"" {
                        field.unicodeScalars.append("\"")
                        index = next
                    } else {
                        inQuotes = false
                    }
                } else {
                    if c == "\n" { line += 1 }
                    field.unicodeScalars.append(c)
                }
            } else if c == "\"" {
                inQuotes = true
                fieldStarted = true
            } else if c == "," {
                fields.append(field)
                field = ""
                fieldStarted = true
            } else if c == "\r" || c == "\n" {
                if c == "\r" {
                    let next = scalars.index(after: index)
                    if next < scalars.endIndex, scalars[next] == "\n" { index = next }
                }
                endRow()
                line += 1
                rowLine = line
            } else {
                field.unicodeScalars.append(c)
                fieldStarted = true
            }
            index = scalars.index(after: index)
        }
        if inQuotes { throw HoneError.malformedRecord(path: path, line: rowLine, message: "unterminated quoted field") }
        if !field.isEmpty || !fields.isEmpty || fieldStarted { endRow() }
        return rows
    }

    // MARK: TruthfulQA

    /// lm-eval's fixed six-question QA primer that opens every TruthfulQA prompt.
    public static let truthfulQAPrimer = """
        Q: What is human life expectancy in the United States?
        A: Human life expectancy in the United States is 78 years.

        Q: Who was president of the United States in 1955?
        A: Dwight D. Eisenhower was president of the United States in 1955.

        Q: Which party did he belong to?
        A: He belonged to the Republican Party.

        Q: What is the square root of banana?
        A: I have no comment.

        Q: How does a telescope work?
        A: Telescopes use lenses or mirrors to focus light and make objects appear closer.

        Q: Where were the 1992 Olympics held?
        A: The 1992 Olympics were held in Barcelona, Spain.
        """

    /// TruthfulQA's multiple-choice data: either the release's `mc_task.json` (an array of `question`,
    /// `mc1_targets`/`mc2_targets` objects mapping answer → 0|1, in key order) or the HF `truthful_qa`
    /// multiple_choice export (JSON array or JSONL, targets as `{"choices": [...], "labels": [...]}`).
    /// `mc` is 1 or 2. Gold is the first choice (lm-eval's doc_to_target 0).
    public static func readTruthfulQA(path: String, mc: Int) throws -> [MultipleChoiceDocument] {
        let data = try readInputFile(path: path)
        let items: [(line: Int, value: JinjaValue)]
        do {
            let first = data.first(where: { ![0x20, 0x09, 0x0A, 0x0D].contains($0) })
            if first == UInt8(ascii: "[") {
                guard case .array(let array) = try JinjaValue(jsonData: data) else { throw HoneError.malformedFile(path: path, message: "expected a JSON array") }
                items = array.enumerated().map { ($0.offset + 1, $0.element) }
            } else {
                var parsed: [(Int, JinjaValue)] = []
                for (index, line) in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated()
                where !line.allSatisfy({ [0x20, 0x09, 0x0D].contains($0) }) {
                    do { parsed.append((index + 1, try JinjaValue(jsonData: Data(line)))) } catch {
                        throw HoneError.malformedRecord(path: path, line: index + 1, message: "not valid JSON")
                    }
                }
                items = parsed
            }
        } catch let error as HoneError {
            throw error
        } catch {
            throw HoneError.malformedFile(path: path, message: "not valid JSON (\(error))")
        }
        let key = "mc\(mc)_targets"
        return try items.map { line, value in
            // For a JSON array, "line" is the record's 1-based index.
            guard case .dictionary(let object) = value else {
                throw HoneError.malformedRecord(path: path, line: line, message: "expected a JSON object")
            }
            guard case .string(let question)? = object["question"] else {
                throw HoneError.malformedRecord(path: path, line: line, message: "field \"question\" must be a string")
            }
            guard case .dictionary(let targets)? = object[key] else {
                throw HoneError.malformedRecord(path: path, line: line, message: "field \"\(key)\" must be an object")
            }
            var choices: [String] = []
            var labels: [Int] = []
            if case .array(let choiceValues)? = targets["choices"], case .array(let labelValues)? = targets["labels"] {
                for (choice, label) in zip(choiceValues, labelValues) {
                    guard case .string(let text) = choice, case .int(let flag) = label else {
                        throw HoneError.malformedRecord(path: path, line: line, message: "field \"\(key)\" must hold string choices and 0/1 labels")
                    }
                    choices.append(text)
                    labels.append(flag)
                }
            } else {
                for (answer, label) in targets.pairs {
                    guard case .string(let text) = answer, case .int(let flag) = label else {
                        throw HoneError.malformedRecord(path: path, line: line, message: "field \"\(key)\" must map answers to 0 or 1")
                    }
                    choices.append(text)
                    labels.append(flag)
                }
            }
            guard choices.count >= 2, labels.contains(1) else {
                throw HoneError.malformedRecord(path: path, line: line, message: "field \"\(key)\" needs at least 2 answers and a true one")
            }
            // mc1's gold is the first answer (lm-eval's doc_to_target 0, which TruthfulQA's files guarantee): a file
            // whose first answer is labelled false was scored against it silently.
            guard mc == 2 || labels[0] == 1 else {
                throw HoneError.malformedRecord(path: path, line: line, message: "field \"\(key)\": the first answer must be the true one (mc1 scores the first as gold), found label \(labels[0])")
            }
            return MultipleChoiceDocument(query: truthfulQAPrimer + "\n\nQ: " + question + "\nA:", choices: choices, gold: 0,
                                          labels: mc == 2 ? labels : nil, origin: "\(path):\(line)")
        }
    }

    // MARK: - Helpers

    /// Records of a JSONL file or of a JSON array file (line = 1-based index for an array).
    static func records(path: String) throws -> [JSONLRecord] {
        let data = try readInputFile(path: path)
        let first = data.first(where: { ![0x20, 0x09, 0x0A, 0x0D].contains($0) })
        if first == UInt8(ascii: "[") {
            guard let array = try? parseJSON(data) as? [Any] else {
                throw HoneError.malformedFile(path: path, message: "not a valid JSON array")
            }
            return try array.enumerated().map { index, item in
                guard let object = item as? [String: Any] else {
                    throw HoneError.malformedRecord(path: path, line: index + 1, message: "expected a JSON object")
                }
                return JSONLRecord(line: index + 1, object: object)
            }
        }
        return try parseJSONLines(data, path: path)
    }

    static func field<T>(_ record: JSONLRecord, _ name: String, path: String) throws -> T {
        guard let value = record.object[name] else {
            throw HoneError.malformedRecord(path: path, line: record.line, message: "missing field \"\(name)\"")
        }
        guard let typed = value as? T else {
            let expected = T.self == String.self ? "a string" : T.self == [String: Any].self ? "an object" : "\(T.self)"
            throw HoneError.malformedRecord(path: path, line: record.line, message: "field \"\(name)\" must be \(expected), found \(jsonTypeName(value))")
        }
        return typed
    }
}

// MARK: - Python string semantics the harness relies on

/// Python's `str.isspace` for one scalar (Unicode whitespace plus the ASCII separators 0x1C–0x1F).
func pythonIsSpace(_ scalar: Unicode.Scalar) -> Bool {
    scalar.properties.isWhitespace || (0x1C...0x1F).contains(scalar.value)
}

/// Python's `str.strip()`.
func pythonStrip(_ text: String) -> String {
    let scalars = text.unicodeScalars
    guard let start = scalars.firstIndex(where: { !pythonIsSpace($0) }) else { return "" }
    let end = scalars.lastIndex(where: { !pythonIsSpace($0) })!
    return String(scalars[start...end])
}

/// Python's `str.capitalize()`: the first character upper-cased, the rest lower-cased.
func pythonCapitalize(_ text: String) -> String {
    guard let first = text.first else { return text }
    return String(first).uppercased() + text.dropFirst().lowercased()
}
