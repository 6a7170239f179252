import CBLAS
import Foundation
import HoneKernels

public let version = "0.1.0"

/// Process-wide settings of the compute runtime.
public enum Runtime {
    /// Sets the kernel thread count. OpenBLAS runs single-threaded inside Hone's own OpenMP regions,
    /// so one pool owns the cores.
    public static func setThreads(_ threads: Int) {
        hk_set_threads(Int32(threads))
        openblas_set_num_threads(1)
    }

    public static var threads: Int { Int(hk_get_threads()) }

    /// Restarts the process once so that OpenBLAS loads its AVX-512 kernels when the CPU has AVX-512 but
    /// OpenBLAS chose AVX2 ones (it decides when the library loads, before any of Hone's code runs).
    /// HONE_BLAS_CORETYPE=NAME picks an OpenBLAS core explicitly instead. Returns when no restart is needed.
    public static func selectBLASKernels() {
        if let chosen = ProcessInfo.processInfo.environment["HONE_BLAS_CORETYPE"],
           ProcessInfo.processInfo.environment["HONE_BLAS_RESTARTED"] == nil, chosen != blasCore {
            restart(coreType: chosen)
        }
        guard hk_blas_should_use_avx512_core() != 0 else { return }
        restart(coreType: "SkylakeX")
    }

    private static func restart(coreType: String) {
        setenv("OPENBLAS_CORETYPE", coreType, 1)
        setenv("HONE_BLAS_RESTARTED", "1", 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        // execv returns only on failure; carry on with the kernels OpenBLAS chose.
    }

    /// Keeps freed activation buffers in the process for reuse. glibc otherwise returns every large block to the
    /// system on free and maps fresh, zero-filled pages on the next allocation: a training step allocates and frees
    /// hundreds of megabytes of activations, and the page faults cost several percent of the step.
    public static func keepFreedMemory() {
        hk_keep_freed_memory()
    }

    /// OpenBLAS's kernel family, for benchmark reports.
    public static var blasCore: String { String(cString: hk_blas_core_name()) }

    // MARK: - Instruction sets

    /// HONE_ISA=avx2 (or scalar, or avx512) runs Hone's own kernels at that instruction-set level at most: to
    /// compare the paths on one machine (what an AVX2-only laptop runs, on an AVX-512 server), or to rule a fast
    /// path out when chasing a wrong number. A level above what the CPU has is clamped to it. OpenBLAS keeps its own
    /// choice (HONE_BLAS_CORETYPE sets that one).
    public static func applyInstructionSetLimit(environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        guard let value = environment["HONE_ISA"], !value.isEmpty else { return }
        let levels: [String: hk_isa] = ["scalar": HK_ISA_SCALAR, "avx2": HK_ISA_AVX2, "avx512": HK_ISA_AVX512]
        guard let level = levels[value.lowercased()] else {
            throw HoneError.invalidArgument("HONE_ISA must be scalar, avx2 or avx512, not '\(value)'")
        }
        hk_isa_force(Int32(level.rawValue))
    }

    /// The level Hone's kernels run at, as reports name it: "avx512 (vnni, gfni)", "avx2" or "scalar". The
    /// extensions listed are those the AVX-512 kernels use when the CPU has them (VNNI for every integer product,
    /// GFNI for Q2_K and Q3_K).
    public static var kernelLevel: String {
        switch hk_isa_current() {
        case Int32(HK_ISA_AVX512.rawValue):
            let extensions = [hk_cpu_has_vnni() != 0 ? "vnni" : nil, hk_cpu_has_gfni() != 0 ? "gfni" : nil].compactMap { $0 }
            return extensions.isEmpty ? "avx512" : "avx512 (\(extensions.joined(separator: ", ")))"
        case Int32(HK_ISA_AVX2.rawValue): return "avx2"
        default: return "scalar"
        }
    }
}

/// Ctrl-C for interactive commands: recorded by a signal handler, polled between tokens.
public enum Interrupt {
    public static func install() { hk_interrupt_install() }
    public static var isPending: Bool { hk_interrupt_pending() != 0 }
    public static func clear() { hk_interrupt_clear() }
}

/// Peak resident set size of this process in bytes (getrusage reports KiB on Linux).
public func peakResidentBytes() -> Int {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return Int(usage.ru_maxrss) * 1024
}
