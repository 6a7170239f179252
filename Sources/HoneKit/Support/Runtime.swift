import CBLAS
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
}
