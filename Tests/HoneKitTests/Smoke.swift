import Testing
import HoneKit
@Test func version() { #expect(honeVersion.hasPrefix("hone")) }
