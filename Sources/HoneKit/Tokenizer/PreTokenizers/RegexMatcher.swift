import Foundation

// MARK: - Compiled pattern

/// A pre-tokenizer regex compiled to a small backtracking program over UTF-8 text.
///
/// It finds the same matches as Oniguruma (what Hugging Face `tokenizers` uses) for the patterns tokenizers ship:
/// leftmost match, alternatives tried in order, greedy quantifiers longest first and giving back one scalar at a
/// time. A hand-rolled matcher rather than NSRegularExpression: that one is slow on this workload (it works on
/// UTF-16) and its Unicode classes and anchors differ in details from Oniguruma's.
public struct PreTokenRegex: Sendable {
    public let pattern: String
    let program: [RegexInstruction]
    let sets: [RegexCharacterSet]

    /// - Parameter rustWord: `\w` means what it means in Rust's regex crate (Alphabetic, marks, digits, connector
    ///   punctuation, Join_Control) rather than in Oniguruma (letters, marks, digits, connector punctuation).
    public init(_ pattern: String, rustWord: Bool = false) throws(PreTokenRegexError) {
        self.pattern = pattern
        var compiler = RegexCompiler(pattern: pattern)
        try compiler.compile(try RegexParser.parse(pattern, rustWord: rustWord))
        compiler.emit(.init(.succeed))
        program = compiler.program
        sets = compiler.sets
    }

    /// The byte ranges of every non-overlapping match in `bytes`, left to right (Rust's `find_iter`, which
    /// `tokenizers` uses): after an empty match the search moves on one scalar.
    func matches(in bytes: UnsafeBufferPointer<UInt8>, into output: inout [Range<Int>]) {
        var stack: [RegexBacktrack] = []
        var start = 0
        while start <= bytes.count {
            guard let found = firstMatch(in: bytes, from: start, stack: &stack) else { return }
            output.append(found)
            if found.isEmpty {
                guard found.upperBound < bytes.count else { return }
                start = found.upperBound + UTF8Scalars.decode(bytes, at: found.upperBound).length
            } else {
                start = found.upperBound
            }
        }
    }

    /// The matches of `text` as strings (tests and diagnostics).
    public func matches(in text: String) -> [String] {
        var text = text
        return text.withUTF8 { bytes in
            var ranges: [Range<Int>] = []
            matches(in: bytes, into: &ranges)
            return ranges.map { String(decoding: UnsafeBufferPointer(rebasing: bytes[$0]), as: UTF8.self) }
        }
    }

    /// The leftmost match at or after `start`.
    private func firstMatch(in bytes: UnsafeBufferPointer<UInt8>, from start: Int,
                            stack: inout [RegexBacktrack]) -> Range<Int>? {
        program.withUnsafeBufferPointer { program in
            sets.withUnsafeBufferPointer { sets in
                let machine = RegexMachine(bytes: bytes, program: program, sets: sets)
                var position = start
                while true {
                    if let end = machine.run(from: 0, at: position, stack: &stack) { return position..<end }
                    guard position < bytes.count else { return nil }
                    position += UTF8Scalars.decode(bytes, at: position).length
                }
            }
        }
    }
}

// MARK: - Instructions

struct RegexInstruction {
    enum Operation: UInt8 {
        /// Consume one scalar of set `a`.
        case scalar
        /// Consume `b`...`c` scalars of set `a` (c < 0: no limit), as many as possible, giving back one at a time.
        case run
        /// Continue at `a`; on failure, at `b`.
        case split
        case jump
        /// `a` is a `RegexAssertion`.
        case assert
        /// The body from the next instruction to its `succeed` must (b = 0) or must not (b = 1) match here; then
        /// continue at `a`. Nothing the body tried is kept.
        case lookahead
        /// The body from the next instruction to its `succeed` matches once, without backtracking into it; then
        /// continue at `a` after its match.
        case atomic
        case succeed
    }

    var operation: Operation
    var a: Int32 = 0
    var b: Int32 = 0
    var c: Int32 = 0

    init(_ operation: Operation, _ a: Int32 = 0, _ b: Int32 = 0, _ c: Int32 = 0) {
        self.operation = operation
        self.a = a
        self.b = b
        self.c = c
    }
}

/// A saved alternative: resume at `pc` and `position`. For a `run`, `floor` is the shortest end it may give back
/// to; -1 for a plain alternative.
struct RegexBacktrack {
    var pc: Int32
    var floor: Int
    var position: Int
}

// MARK: - Compiler

struct RegexCompiler {
    let pattern: String
    var program: [RegexInstruction] = []
    var sets: [RegexCharacterSet] = []

    mutating func emit(_ instruction: RegexInstruction) { program.append(instruction) }
    var here: Int32 { Int32(program.count) }

    private mutating func addSet(_ set: RegexCharacterSet) -> Int32 {
        sets.append(set)
        return Int32(sets.count - 1)
    }

    mutating func compile(_ node: RegexNode) throws(PreTokenRegexError) {
        switch node {
        case .empty:
            break
        case .set(let set):
            emit(.init(.scalar, addSet(set)))
        case .sequence(let nodes):
            for node in nodes { try compile(node) }
        case .alternation(let branches):
            var jumpsToEnd: [Int] = []
            for (index, branch) in branches.enumerated() {
                if index < branches.count - 1 {
                    let split = program.count
                    emit(.init(.split, here + 1, 0))
                    try compile(branch)
                    jumpsToEnd.append(program.count)
                    emit(.init(.jump))
                    program[split].b = here
                } else {
                    try compile(branch)
                }
            }
            for jump in jumpsToEnd { program[jump].a = here }
        case .repetition(let body, let minimum, let maximum, let mode):
            if mode == .possessive {
                try compile(.atomic(.repetition(body, min: minimum, max: maximum, mode: .greedy)))
                return
            }
            if case .set(let set) = body, mode == .greedy {
                emit(.init(.run, addSet(set), Int32(minimum), Int32(maximum ?? -1)))
                return
            }
            for _ in 0..<minimum { try compile(body) }
            if let maximum {
                var splits: [Int] = []
                for _ in minimum..<maximum {
                    splits.append(program.count)
                    emit(.init(.split))
                    program[splits.last!].a = here  // provisional, fixed below
                    try compile(body)
                }
                for split in splits { setSplit(split, body: split + 1, skip: here, lazy: mode == .lazy) }
            } else {
                guard !body.isNullable else {
                    throw PreTokenRegexError(pattern: pattern, message: "a repeated group that can match nothing is not supported")
                }
                let loop = program.count
                emit(.init(.split))
                try compile(body)
                emit(.init(.jump, Int32(loop)))
                setSplit(loop, body: loop + 1, skip: here, lazy: mode == .lazy)
            }
        case .lookahead(let body, let negative):
            let start = program.count
            emit(.init(.lookahead, 0, negative ? 1 : 0))
            try compile(body)
            emit(.init(.succeed))
            program[start].a = here
        case .atomic(let body):
            let start = program.count
            emit(.init(.atomic))
            try compile(body)
            emit(.init(.succeed))
            program[start].a = here
        case .assertion(let assertion):
            emit(.init(.assert, assertion.rawValue))
        }
    }

    /// A split that prefers the body (greedy) or the skip (lazy).
    private mutating func setSplit(_ index: Int, body: Int, skip: Int32, lazy: Bool) {
        program[index].a = lazy ? skip : Int32(body)
        program[index].b = lazy ? Int32(body) : skip
    }
}

// MARK: - Machine

/// Runs a program at one position with an explicit backtracking stack (no recursion except into lookahead and
/// atomic bodies, which are at most as deep as the pattern nests).
struct RegexMachine {
    let bytes: UnsafeBufferPointer<UInt8>
    let program: UnsafeBufferPointer<RegexInstruction>
    let sets: UnsafeBufferPointer<RegexCharacterSet>

    /// The end of the match of the program from `pc` at `position` (up to its `succeed`), nil when there is none.
    /// Leaves `stack` as it found it.
    func run(from startPC: Int, at startPosition: Int, stack: inout [RegexBacktrack]) -> Int? {
        let base = stack.count
        var pc = startPC
        var position = startPosition
        let count = bytes.count
        while true {
            let instruction = program[pc]
            var matched = true
            switch instruction.operation {
            case .scalar:
                if position < count {
                    let (value, length) = UTF8Scalars.decode(bytes, at: position)
                    if sets[Int(instruction.a)].contains(value) {
                        position += length
                        pc += 1
                    } else {
                        matched = false
                    }
                } else {
                    matched = false
                }
            case .run:
                let set = sets[Int(instruction.a)]
                let minimum = Int(instruction.b)
                let maximum = instruction.c < 0 ? Int.max : Int(instruction.c)
                var taken = 0
                // The shortest end the run may give back to: its start with a minimum of 0.
                var floor = position
                while taken < maximum, position < count {
                    let (value, length) = UTF8Scalars.decode(bytes, at: position)
                    guard set.contains(value) else { break }
                    position += length
                    taken += 1
                    if taken == minimum { floor = position }
                }
                if taken < minimum {
                    matched = false
                } else {
                    if position > floor { stack.append(RegexBacktrack(pc: Int32(pc + 1), floor: floor, position: position)) }
                    pc += 1
                }
            case .split:
                stack.append(RegexBacktrack(pc: instruction.b, floor: -1, position: position))
                pc = Int(instruction.a)
            case .jump:
                pc = Int(instruction.a)
            case .assert:
                matched = holds(RegexAssertion(rawValue: instruction.a)!, at: position)
                if matched { pc += 1 }
            case .lookahead:
                let found = run(from: pc + 1, at: position, stack: &stack) != nil
                if found == (instruction.b == 0) {
                    pc = Int(instruction.a)
                } else {
                    matched = false
                }
            case .atomic:
                if let end = run(from: pc + 1, at: position, stack: &stack) {
                    position = end
                    pc = Int(instruction.a)
                } else {
                    matched = false
                }
            case .succeed:
                stack.removeSubrange(base...)
                return position
            }
            if matched { continue }
            // Backtrack to the most recent alternative of this run.
            guard stack.count > base else { return nil }
            let entry = stack[stack.count - 1]
            pc = Int(entry.pc)
            if entry.floor < 0 {
                stack.removeLast()
                position = entry.position
            } else {
                // A run gives back one scalar; it stays on the stack while it can give back more.
                position = UTF8Scalars.previousBoundary(bytes, before: entry.position)
                if position > entry.floor {
                    stack[stack.count - 1].position = position
                } else {
                    stack.removeLast()
                }
            }
        }
    }

    private func holds(_ assertion: RegexAssertion, at position: Int) -> Bool {
        let count = bytes.count
        switch assertion {
        case .lineStart: return position == 0 || bytes[position - 1] == 0x0A
        case .lineEnd: return position == count || bytes[position] == 0x0A
        case .textStart: return position == 0
        case .textEnd: return position == count
        case .textEndBeforeNewline: return position == count || (position == count - 1 && bytes[position] == 0x0A)
        }
    }
}
