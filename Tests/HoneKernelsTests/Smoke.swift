import Testing
import HoneKernels
@Test func threads() { #expect(hk_get_threads() >= 1) }
