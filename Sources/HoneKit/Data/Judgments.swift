import Foundation

// MARK: - Judgment data for CUT

/// One CUT training record (methods.md §1.1): an instruction, the reply, and a critique of the reply
/// (`judgment`, nil when the reply was judged acceptable). `score` is optional: CUT discards the judgment of a
/// record whose score is 7 or more.
public struct JudgmentRecord: Sendable, Equatable {
    /// The source's id, passed through for tracing (any JSON scalar, already rendered as JSON text).
    public var idJSON: String?
    public var instruction: String
    public var input: String
    public var output: String
    public var judgment: String?
    public var score: Double?

    public init(idJSON: String? = nil, instruction: String, input: String = "", output: String, judgment: String?, score: Double? = nil) {
        self.idJSON = idJSON
        self.instruction = instruction
        self.input = input
        self.output = output
        self.judgment = judgment
        self.score = score
    }

    /// Whether CUT's trainer treats the record as negative (finetune_unlikelihood.py): a judgment that is not None
    /// after the score rule. An empty-string judgment counts as negative there too (it is not None).
    public var isNegativeForCUT: Bool {
        if let score, score >= 7 { return false }
        return judgment != nil
    }
}

public enum JudgmentSchema: String, CaseIterable, Sendable {
    /// facebookresearch/Shepherd `human_data_for_model.jsonl`: `{id, dataset, question, answer, feedback}`.
    case shepherd
    /// CUT's own files (`data/iter/*.json`): `{id, instruction, input, output, judgment, score?}`.
    case cut
}

public struct JudgmentConversion {
    public enum DropReason: String, CaseIterable, Sendable {
        case emptyOutput = "empty output (nothing to train on)"
    }

    public var recordsIn = 0
    public var records: [JudgmentRecord] = []
    public var dropped: [DropReason: [String]] = [:]

    public var droppedCount: Int { dropped.values.reduce(0) { $0 + $1.count } }
    /// Rows CUT builds (methods.md §1.2): a positive record gives one Align-P row, a negative record one
    /// Align-N row (prompt with the judgment) and one Misalign row (the same reply without it).
    public var alignPositive: Int { records.filter { !$0.isNegativeForCUT }.count }
    public var alignNegative: Int { records.filter(\.isNegativeForCUT).count }
    public var misalign: Int { alignNegative }
    /// Negative records whose judgment text is blank: CUT trains them as negatives all the same.
    public var blankJudgments: Int {
        records.filter { $0.isNegativeForCUT && strippedPythonWhitespace($0.judgment ?? "").isEmpty }.count
    }
    /// Records whose judgment the score rule (score ≥ 7) discards.
    public var judgmentsDiscardedByScore: Int {
        records.filter { record in record.judgment != nil && (record.score ?? -Double.infinity) >= 7 }.count
    }

    public static func convert(_ source: [DataRecord], schema: JudgmentSchema) throws -> JudgmentConversion {
        var result = JudgmentConversion()
        for record in source {
            result.recordsIn += 1
            let converted: JudgmentRecord
            switch schema {
            case .shepherd: converted = try shepherdRecord(record)
            case .cut: converted = try cutRecord(record)
            }
            if strippedPythonWhitespace(converted.output).isEmpty {
                result.dropped[.emptyOutput, default: []].append(record.place)
                continue
            }
            result.records.append(converted)
        }
        return result
    }

    /// Shepherd → CUT as CUT's `scripts/convert2alpaca.py` maps it: instruction = question, output = answer,
    /// judgment = feedback, score = 1 (every Shepherd item is a critiqued, i.e. negative, reply); input empty.
    static func shepherdRecord(_ record: DataRecord) throws -> JudgmentRecord {
        if record.object["question"] == nil, record.object["metadata"] != nil {
            throw record.error("a Shepherd raw annotation record (human_data_raw.jsonl); give human_data_for_model.jsonl "
                + "(question, answer, feedback)")
        }
        return JudgmentRecord(idJSON: try idText(record), instruction: try record.string("question"), input: "",
                              output: try record.string("answer"), judgment: try record.string("feedback"), score: 1)
    }

    /// CUT's own schema, checked and passed through. `input` may be absent or null (then empty, as in Alpaca);
    /// `judgment` must be present (null marks an acceptable reply: a missing key is more likely a wrong file).
    static func cutRecord(_ record: DataRecord) throws -> JudgmentRecord {
        guard record.object["judgment"] != nil else {
            throw record.error("missing \"judgment\" (a critique string, or null for an acceptable reply)")
        }
        return JudgmentRecord(idJSON: try idText(record), instruction: try record.string("instruction"),
                              input: try record.optionalString("input") ?? "", output: try record.string("output"),
                              judgment: try record.optionalString("judgment"), score: try record.optionalNumber("score"))
    }

    static func idText(_ record: DataRecord) throws -> String? {
        guard let id = record.object["id"], !(id is NSNull) else { return nil }
        if let text = id as? String { return jsonString(text) }
        if let integer = jsonInteger(id) { return String(integer) }
        throw record.error("\"id\" is not a string or an integer")
    }

    /// The CUT training file: a JSON array of `{id?, instruction, input, output, judgment, score?}`, laid out as
    /// `json.dump(indent=2)` would (CUT's converter writes that).
    public func trainingJSON() -> String {
        prettyJSONArray(records.map { record in
            var fields: [(key: String, value: String)] = []
            if let id = record.idJSON { fields.append(("id", id)) }
            fields.append(("instruction", jsonString(record.instruction)))
            fields.append(("input", jsonString(record.input)))
            fields.append(("output", jsonString(record.output)))
            fields.append(("judgment", record.judgment.map(jsonString) ?? "null"))
            if let score = record.score { fields.append(("score", jsonNumber(score))) }
            return fields
        })
    }

    public func summary(input: String, schema: JudgmentSchema, output: String) -> String {
        var table = SummaryTable(title: "judgments (\(schema.rawValue)): \(input)")
        table.add("records in", recordsIn)
        table.add("records out", records.count, note: output)
        table.add("dropped", droppedCount)
        for reason in DropReason.allCases {
            let places = dropped[reason] ?? []
            if !places.isEmpty {
                table.add("  " + reason.rawValue, places.count,
                          note: places.prefix(10).joined(separator: ", ") + (places.count > 10 ? ", …" : ""))
            }
        }
        table.add("Align-P (no judgment)", alignPositive, note: "one row each")
        table.add("Align-N (with judgment)", alignNegative, note: "paired with a Misalign row")
        table.add("Misalign", misalign)
        table.add("judgments discarded (score >= 7)", judgmentsDiscardedByScore, note: "counted as Align-P")
        table.add("blank judgments", blankJudgments, note: "negative all the same, as in CUT's code")
        return table.render()
    }
}

// MARK: - Reading CUT training data

public enum JudgmentData {
    /// Reads CUT training data: a JSON array or JSONL of `{instruction, input?, output, judgment, score?}` (what
    /// `hone data judgments` writes, CUT's `data/iter/*.json`). `judgment` must be present: a string, or null for
    /// an acceptable reply.
    public static func read(path: String) throws -> [JudgmentRecord] {
        try readDataRecords(path: path).map { try JudgmentConversion.cutRecord($0) }
    }
}
