import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Open MPI, loaded at run time with dlopen: the normal `hone` binary neither links nor needs an MPI installation;
/// only a process started by `mpirun` looks for the library. One binary serves both cases, so a user who adds MPI
/// later does not rebuild anything, and CI machines without MPI run every other test unchanged.
///
/// The handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, ...) follow Open MPI's ABI, where each is the address of a
/// predefined global object exported by libmpi; MPICH-family libraries use integer handles and are not supported.
final class MPILibrary: @unchecked Sendable {
    typealias Handle = UnsafeMutableRawPointer

    // MARK: - Entry points (C signatures from the MPI standard, handles as pointers)

    let initialize: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?) -> Int32
    let finalize: @convention(c) () -> Int32
    let commRank: @convention(c) (Handle, UnsafeMutablePointer<Int32>) -> Int32
    let commSize: @convention(c) (Handle, UnsafeMutablePointer<Int32>) -> Int32
    /// MPI_Bcast(buffer, count, datatype, root, comm)
    let broadcast: @convention(c) (UnsafeMutableRawPointer?, Int32, Handle, Int32, Handle) -> Int32
    /// MPI_Allgather(sendbuf, sendcount, sendtype, recvbuf, recvcount, recvtype, comm)
    let allgather: @convention(c) (UnsafeRawPointer?, Int32, Handle, UnsafeMutableRawPointer?, Int32, Handle, Handle) -> Int32
    /// MPI_Allgatherv(sendbuf, sendcount, sendtype, recvbuf, recvcounts, displacements, recvtype, comm)
    let allgatherv: @convention(c) (UnsafeRawPointer?, Int32, Handle, UnsafeMutableRawPointer?, UnsafePointer<Int32>,
                                    UnsafePointer<Int32>, Handle, Handle) -> Int32
    let barrier: @convention(c) (Handle) -> Int32
    let abort: @convention(c) (Handle, Int32) -> Int32

    // MARK: - Predefined handles

    let world: Handle
    let float: Handle
    let double: Handle
    let int32: Handle
    let byte: Handle

    /// The library named by HONE_MPI_LIBRARY, else Open MPI's soname, else the development symlink.
    static func load() throws -> MPILibrary {
        let environment = ProcessInfo.processInfo.environment
        let candidates = environment["HONE_MPI_LIBRARY"].map { [$0] } ?? ["libmpi.so.40", "libmpi.so"]
        var lastError = ""
        for name in candidates {
            // RTLD_GLOBAL: Open MPI's own plug-ins, which it loads with dlopen later, resolve libmpi's symbols.
            if let handle = dlopen(name, RTLD_NOW | RTLD_GLOBAL) {
                return try MPILibrary(handle: handle, name: name)
            }
            lastError = dlerror().map { String(cString: $0) } ?? "not found"
        }
        throw HoneError.invalidArgument("this process was started by mpirun, but Open MPI's library could not be loaded "
            + "(\(lastError)); install Open MPI (Debian: openmpi-bin libopenmpi-dev) or set HONE_MPI_LIBRARY to libmpi's path")
    }

    private init(handle: UnsafeMutableRawPointer, name: String) throws {
        func symbol(_ symbolName: String) throws -> UnsafeMutableRawPointer {
            guard let address = dlsym(handle, symbolName) else {
                throw HoneError.invalidArgument("\(name) has no symbol \(symbolName): only Open MPI's ABI is supported")
            }
            return address
        }
        func function<F>(_ symbolName: String, as type: F.Type) throws -> F {
            unsafeBitCast(try symbol(symbolName), to: type)
        }
        initialize = try function("MPI_Init", as: (@convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?) -> Int32).self)
        finalize = try function("MPI_Finalize", as: (@convention(c) () -> Int32).self)
        commRank = try function("MPI_Comm_rank", as: (@convention(c) (Handle, UnsafeMutablePointer<Int32>) -> Int32).self)
        commSize = try function("MPI_Comm_size", as: (@convention(c) (Handle, UnsafeMutablePointer<Int32>) -> Int32).self)
        broadcast = try function("MPI_Bcast", as: (@convention(c) (UnsafeMutableRawPointer?, Int32, Handle, Int32, Handle) -> Int32).self)
        allgather = try function("MPI_Allgather", as: (@convention(c) (UnsafeRawPointer?, Int32, Handle, UnsafeMutableRawPointer?, Int32, Handle, Handle) -> Int32).self)
        allgatherv = try function("MPI_Allgatherv", as: (@convention(c) (UnsafeRawPointer?, Int32, Handle, UnsafeMutableRawPointer?,
                                                                          UnsafePointer<Int32>, UnsafePointer<Int32>, Handle, Handle) -> Int32).self)
        barrier = try function("MPI_Barrier", as: (@convention(c) (Handle) -> Int32).self)
        abort = try function("MPI_Abort", as: (@convention(c) (Handle, Int32) -> Int32).self)
        world = try symbol("ompi_mpi_comm_world")
        float = try symbol("ompi_mpi_float")
        double = try symbol("ompi_mpi_double")
        int32 = try symbol("ompi_mpi_int")
        byte = try symbol("ompi_mpi_byte")
    }
}
