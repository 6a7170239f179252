import Foundation
import Testing
@testable import HoneKit

/// parseJSON picks JSONDecoder when the bytes hold U+FEFF anywhere (JSONSerialization drops it on Linux); the scan
/// that decides is checked against a plain search over every placement, including partial marks at the end.
struct JSONTests {
    /// The reference: EF BB BF at any offset.
    static func naiveContains(_ bytes: [UInt8]) -> Bool {
        guard bytes.count >= 3 else { return false }
        return (0...(bytes.count - 3)).contains { bytes[$0] == 0xEF && bytes[$0 + 1] == 0xBB && bytes[$0 + 2] == 0xBF }
    }

    @Test func byteOrderMarkScanMatchesPlainSearch() {
        let mark: [UInt8] = [0xEF, 0xBB, 0xBF]
        var cases: [[UInt8]] = [[], [0xEF], [0xEF, 0xBB], mark, [0xEF, 0xEF, 0xBB, 0xBF], [0xEF, 0xBB, 0xEF, 0xBB],
                                Array("{\"a\": 1}".utf8), [0xEF, 0xBB, 0xBE, 0xEF]]
        let filler = Array("{\"key\": \"value ü\"}".utf8)
        for position in 0...filler.count {
            cases.append(Array(filler[..<position]) + mark + Array(filler[position...]))
            cases.append(Array(filler[..<position]) + [0xEF, 0xBB] + Array(filler[position...]))
        }
        for bytes in cases {
            #expect(containsByteOrderMark(Data(bytes)) == Self.naiveContains(bytes), "bytes \(bytes)")
        }
    }

    @Test func keepsByteOrderMarkInsideStrings() throws {
        let parsed = try parseJSON(Data("{\"text\": \"\u{FEFF}hi\"}".utf8)) as? [String: Any]
        #expect(parsed?["text"] as? String == "\u{FEFF}hi")
    }
}
