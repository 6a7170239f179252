import HoneKernels
import CBLAS
import CLZ4
public let honeVersion = "hone 0.1.0 threads=\(hk_get_threads()) lz4=\(LZ4F_getVersion())"
