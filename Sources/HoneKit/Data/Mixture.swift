import Foundation

// MARK: - Seeded data mixtures (Llama 2's reward-model recipes)

/// How many records one source contributes to a mixture.
public enum MixtureShare: Equatable, Sendable, CustomStringConvertible {
    /// Every record.
    case all
    /// This many records, drawn uniformly without replacement.
    case count(Int)
    /// This percentage of the source's records (rounded to the nearest record), drawn uniformly.
    case percent(Double)
    /// This multiple of the number of records the first source contributes ("an equal part" is ×1).
    case multipleOfFirst(Double)

    /// "all", "500", "10%", "x1" / "×0.5".
    public init(parsing text: String) throws {
        let spec = text.trimmingCharacters(in: .whitespaces).lowercased()
        if spec == "all" { self = .all; return }
        if spec.hasSuffix("%"), let value = Double(spec.dropLast()), value >= 0, value <= 100 { self = .percent(value); return }
        if let first = spec.first, first == "x" || first == "×", let value = Double(spec.dropFirst()), value >= 0, value.isFinite {
            self = .multipleOfFirst(value)
            return
        }
        if let value = Int(spec), value >= 0 { self = .count(value); return }
        throw HoneError.invalidArgument("a mixture share must be all, a count (500), a percentage (10%) or a multiple of the first source (x1), not '\(text)'")
    }

    public var description: String {
        switch self {
        case .all: return "all"
        case .count(let n): return "\(n)"
        case .percent(let p): return "\(jsonNumber(p))%"
        case .multipleOfFirst(let f): return "x\(jsonNumber(f))"
        }
    }
}

/// One source of a mixture: one or more files pooled (a uniform draw over all their records) and its share.
public struct MixtureSource: Sendable {
    public var paths: [String]
    public var share: MixtureShare

    public init(paths: [String], share: MixtureShare) {
        self.paths = paths
        self.share = share
    }

    /// "a.jsonl:all", "b.jsonl,c.jsonl:x1", "d.jsonl" (all): the files, comma-separated, then an optional ":share".
    public init(parsing text: String) throws {
        var files = text
        var share = MixtureShare.all
        if let colon = text.lastIndex(of: ":") {
            do {
                share = try MixtureShare(parsing: String(text[text.index(after: colon)...]))
                files = String(text[..<colon])
            } catch {
                // A colon may belong to a file name; otherwise what follows it is a share that does not parse
                // (`f:-5` was reported as a missing file "f:-5").
                let whole = text.split(separator: ",").map(String.init)
                guard whole.allSatisfy({ FileManager.default.fileExists(atPath: $0) }) else { throw error }
            }
        }
        let paths = files.split(separator: ",").map(String.init).filter { !$0.isEmpty }
        guard !paths.isEmpty else { throw HoneError.invalidArgument("a mixture source needs a file: '\(text)'") }
        self.init(paths: paths, share: share)
    }
}

/// A mixture: each source's records drawn with its share from one seeded generator, then the whole shuffled.
/// Records pass through unchanged (optionally tagged with their source), so any schema mixes. The same sources,
/// shares and seed always give the same file.
public struct Mixture {
    public struct Row: Sendable {
        public var name: String
        public var available: Int
        public var taken: Int
        public var share: MixtureShare
    }

    public var rows: [Row] = []
    /// The mixed records, one JSON line each (no newline), in mixture order.
    public var lines: [String] = []

    public static func make(_ sources: [MixtureSource], seed: UInt64, tagSource: Bool = false) throws -> Mixture {
        guard !sources.isEmpty else { throw HoneError.invalidArgument("a mixture needs at least one source") }
        if case .multipleOfFirst = sources[0].share {
            throw HoneError.invalidArgument("the first source's share cannot be a multiple of itself (x…); give all, a count or a percentage")
        }
        // A file in two sources (or twice in one) would be drawn twice: the draws are without replacement.
        var seen = Set<String>()
        for path in sources.flatMap(\.paths) {
            guard seen.insert(canonicalPath(path)).inserted else {
                throw HoneError.invalidArgument("\(path) is given twice; records are drawn without replacement, so give each file once")
            }
        }
        var generator = SplitMix64(seed: seed)
        var result = Mixture()
        var firstTaken = 0
        var chosen: [(source: Int, record: DataRecord)] = []
        for (index, source) in sources.enumerated() {
            let records = try source.paths.flatMap { try readDataRecords(path: $0) }
            let name = source.paths.map(Mixture.displayName).joined(separator: "+")
            // Compared as a Double first: a multiple of 1e308 is past Int's range (making it an Int trapped).
            let asked: Double
            switch source.share {
            case .all: asked = Double(records.count)
            case .count(let n): asked = Double(n)
            case .percent(let p): asked = (Double(records.count) * p / 100).rounded()
            case .multipleOfFirst(let f): asked = (Double(firstTaken) * f).rounded()
            }
            guard asked <= Double(records.count) else {
                throw HoneError.invalidArgument("source \(name) has \(records.count) records; its share \(source.share) asks for \(asked < 1e15 ? jsonNumber(asked) : String(format: "%.3g", asked))")
            }
            let wanted = Int(asked)
            // A uniform draw without replacement: the first `wanted` of a seeded permutation, kept in file order.
            let order = DataOrder.permutation(count: records.count, seed: generator.next())
            let picked = wanted == records.count ? Array(records.indices) : order.prefix(wanted).sorted()
            chosen += picked.map { (index, records[$0]) }
            if index == 0 { firstTaken = wanted }
            result.rows.append(Row(name: name, available: records.count, taken: wanted, share: source.share))
        }
        guard !chosen.isEmpty else {
            throw HoneError.invalidArgument("the mixture is empty: every share takes 0 records")
        }
        if tagSource {
            // Tags are file names: two sources of one name (d1/x.jsonl, d2/x.jsonl) could not be told apart.
            let names = result.rows.map(\.name)
            if let repeated = names.first(where: { name in names.filter { $0 == name }.count > 1 }) {
                throw HoneError.invalidArgument("two sources would both be tagged '\(repeated)'; rename one to use --tag-source")
            }
            // The tag would replace a field the records already have.
            if let tagged = chosen.first(where: { $0.record.object["source"] != nil }) {
                throw tagged.record.error("already has a \"source\" field, which --tag-source would replace")
            }
        }
        let shuffle = DataOrder.permutation(count: chosen.count, seed: generator.next())
        result.lines = try shuffle.map { position in
            var object = chosen[position].record.object
            if tagSource { object["source"] = result.rows[chosen[position].source].name }
            return try jsonValueText(object)
        }
        return result
    }

    public var jsonl: String { lines.map { $0 + "\n" }.joined() }

    /// A file's name for tables: without .gz/.jsonl/.json, and its folder's name for HH's "test"/"train" files.
    static func displayName(_ path: String) -> String {
        var name = (path as NSString).lastPathComponent
        for suffix in [".gz", ".jsonl", ".json"] where name.hasSuffix(suffix) { name = String(name.dropLast(suffix.count)) }
        if ["test", "train"].contains(name) {
            name = ((path as NSString).deletingLastPathComponent as NSString).lastPathComponent + "/" + name
        }
        return name
    }

    /// The table printed by `hone data mix`.
    public func summary(output: String, seed: UInt64) -> String {
        var table = SummaryTable(title: "mix → \(output) (seed \(seed))")
        let total = max(1, lines.count)
        for row in rows {
            table.add(row.name, row.taken, note: "of \(row.available) (share \(row.share)), \(String(format: "%.1f", 100 * Double(row.taken) / Double(total)))% of the mixture")
        }
        table.add("total", lines.count)
        return table.render()
    }
}
