import Foundation

/// The parts of a SentencePiece `tokenizer.model` (a `ModelProto` protobuf) that encoding needs, parsed by hand:
/// pieces with scores and types, the trainer's model type and special ids, and the normalizer flags.
struct SentencePieceModelFile {
    struct Piece {
        var text: String
        var score: Float
        var type: SentencePieceTokenizer.PieceType
    }

    var pieces: [Piece] = []
    /// TrainerSpec.model_type: 1 unigram, 2 BPE, 3 word, 4 char.
    var modelType = 1
    var byteFallback = false
    var unknownID: Int32 = 0
    var bosID: Int32 = 1
    var eosID: Int32 = 2
    var padID: Int32 = -1
    var normalizerName = "nmt_nfkc"
    var hasPrecompiledCharacterMap = false
    var addDummyPrefix = true
    var removeExtraWhitespaces = true
    var escapeWhitespaces = true

    init(path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else { throw HoneError.fileNotFound(path: path) }
        try data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) in
            var reader = ProtobufReader(bytes: bytes, path: path)
            while let (field, wire) = try reader.nextField() {
                switch (field, wire) {
                case (1, 2): pieces.append(try Self.parsePiece(reader.nestedReader()))
                case (2, 2): try parseTrainerSpec(reader.nestedReader())
                case (3, 2): try parseNormalizerSpec(reader.nestedReader())
                default: try reader.skip(wire)
                }
            }
        }
        if pieces.isEmpty {
            throw HoneError.malformedFile(path: path, message: "not a SentencePiece model (no pieces)")
        }
    }

    private static func parsePiece(_ reader: ProtobufReader) throws -> Piece {
        var reader = reader
        var piece = Piece(text: "", score: 0, type: .normal)
        while let (field, wire) = try reader.nextField() {
            switch (field, wire) {
            case (1, 2): piece.text = String(decoding: try reader.lengthDelimited(), as: UTF8.self)
            case (2, 5): piece.score = Float(bitPattern: try reader.fixed32())
            case (3, 0):
                // Read as a UInt64: a varint past Int's range (ten bytes) trapped when made an Int.
                let raw = try reader.varint()
                guard let type = Int(exactly: raw).flatMap(SentencePieceTokenizer.PieceType.init(rawValue:)) else {
                    throw HoneError.malformedFile(path: reader.path, message: "piece '\(piece.text)' has unknown type \(raw)")
                }
                piece.type = type
            default: try reader.skip(wire)
            }
        }
        return piece
    }

    private mutating func parseTrainerSpec(_ reader: ProtobufReader) throws {
        var reader = reader
        while let (field, wire) = try reader.nextField() {
            switch (field, wire) {
            case (3, 0): modelType = Int(truncatingIfNeeded: try reader.varint())  // an unknown type is refused by name
            case (35, 0): byteFallback = try reader.varint() != 0
            case (40, 0): unknownID = Int32(truncatingIfNeeded: try reader.varint())
            case (41, 0): bosID = Int32(truncatingIfNeeded: try reader.varint())
            case (42, 0): eosID = Int32(truncatingIfNeeded: try reader.varint())
            case (43, 0): padID = Int32(truncatingIfNeeded: try reader.varint())
            default: try reader.skip(wire)
            }
        }
    }

    private mutating func parseNormalizerSpec(_ reader: ProtobufReader) throws {
        var reader = reader
        while let (field, wire) = try reader.nextField() {
            switch (field, wire) {
            case (1, 2): normalizerName = String(decoding: try reader.lengthDelimited(), as: UTF8.self)
            case (2, 2): hasPrecompiledCharacterMap = !(try reader.lengthDelimited()).isEmpty
            case (3, 0): addDummyPrefix = try reader.varint() != 0
            case (4, 0): removeExtraWhitespaces = try reader.varint() != 0
            case (5, 0): escapeWhitespaces = try reader.varint() != 0
            default: try reader.skip(wire)
            }
        }
    }
}

/// A minimal protobuf wire-format reader: varints, fixed32/64 and length-delimited fields, bounds-checked.
struct ProtobufReader {
    let bytes: UnsafeRawBufferPointer
    let path: String
    var offset = 0
    var end: Int

    init(bytes: UnsafeRawBufferPointer, path: String, offset: Int = 0, end: Int? = nil) {
        self.bytes = bytes
        self.path = path
        self.offset = offset
        self.end = end ?? bytes.count
    }

    func truncated() -> HoneError {
        .malformedFile(path: path, message: "truncated or corrupt protobuf at byte \(offset)")
    }

    mutating func varint() throws -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard offset < end, shift < 64 else { throw truncated() }
            let byte = bytes[offset]
            offset += 1
            value |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
        }
    }

    mutating func fixed32() throws -> UInt32 {
        guard end - offset >= 4 else { throw truncated() }
        let value = bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self)
        offset += 4
        return UInt32(littleEndian: value)
    }

    mutating func lengthDelimited() throws -> UnsafeRawBufferPointer {
        let length = try varint()
        guard length <= UInt64(end - offset) else { throw truncated() }
        let slice = UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + Int(length))])
        offset += Int(length)
        return slice
    }

    /// A reader over the next length-delimited field (a nested message).
    mutating func nestedReader() throws -> ProtobufReader {
        let length = try varint()
        guard length <= UInt64(end - offset) else { throw truncated() }
        let nested = ProtobufReader(bytes: bytes, path: path, offset: offset, end: offset + Int(length))
        offset += Int(length)
        return nested
    }

    /// The next (field number, wire type), or nil at the end.
    mutating func nextField() throws -> (Int, Int)? {
        guard offset < end else { return nil }
        let key = try varint()
        let field = Int(key >> 3)
        let wire = Int(key & 7)
        guard field > 0 else { throw truncated() }
        return (field, wire)
    }

    mutating func skip(_ wire: Int) throws {
        switch wire {
        case 0: _ = try varint()
        case 1:
            guard end - offset >= 8 else { throw truncated() }
            offset += 8
        case 2: _ = try lengthDelimited()
        case 5:
            guard end - offset >= 4 else { throw truncated() }
            offset += 4
        default: throw HoneError.malformedFile(path: path, message: "corrupt protobuf: wire type \(wire) at byte \(offset)")
        }
    }
}
