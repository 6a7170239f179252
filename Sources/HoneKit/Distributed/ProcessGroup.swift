import Foundation

/// The processes that share one job: a single process, or the ranks `mpirun` started. Training splits each
/// optimizer step's micro-batches across ranks and gathers their gradients; batch commands split their documents and
/// gather the results on rank 0, which alone writes outputs.
///
/// Every collective call must be made by every rank in the same order (MPI's rule); the callers keep their
/// control flow identical on all ranks for that reason.
public final class ProcessGroup: @unchecked Sendable {
    public let rank: Int
    public let size: Int
    private let mpi: MPILibrary?

    /// One process, no MPI.
    public static let single = ProcessGroup(rank: 0, size: 1, mpi: nil)

    private init(rank: Int, size: Int, mpi: MPILibrary?) {
        self.rank = rank
        self.size = size
        self.mpi = mpi
    }

    public var isRoot: Bool { rank == 0 }
    public var isDistributed: Bool { size > 1 }

    /// Whether this rank handles item `index` of a sharded list (round robin, so shares differ by at most one).
    public func owns(_ index: Int) -> Bool { index % size == rank }

    // MARK: - Joining

    nonisolated(unsafe) private static var joined: ProcessGroup?
    private static let joinLock = NSLock()

    /// True when an MPI launcher started this process (Open MPI's mpirun sets OMPI_COMM_WORLD_SIZE; PMIx-based
    /// launchers set PMIX_RANK).
    public static var launchedByMPI: Bool {
        let environment = ProcessInfo.processInfo.environment
        return environment["OMPI_COMM_WORLD_SIZE"] != nil || environment["PMIX_RANK"] != nil
    }

    /// The group `world()` joined, or `single` when none was joined (error reporting asks this without joining).
    public static var current: ProcessGroup {
        joinLock.lock()
        defer { joinLock.unlock() }
        return joined ?? .single
    }

    /// The job's process group: MPI's world when started by mpirun (initialised once, finalised at exit),
    /// otherwise `single`.
    public static func world() throws -> ProcessGroup {
        joinLock.lock()
        defer { joinLock.unlock() }
        if let joined { return joined }
        guard launchedByMPI else {
            joined = .single
            return .single
        }
        let mpi = try MPILibrary.load()
        try check(mpi.initialize(nil, nil), "MPI_Init")
        var rank: Int32 = 0
        var size: Int32 = 0
        try check(mpi.commRank(mpi.world, &rank), "MPI_Comm_rank")
        try check(mpi.commSize(mpi.world, &size), "MPI_Comm_size")
        let group = ProcessGroup(rank: Int(rank), size: Int(size), mpi: mpi)
        joined = group
        // mpirun treats a rank that exits without MPI_Finalize as failed.
        atexit { ProcessGroup.finalizeJoined() }
        return group
    }

    private static func finalizeJoined() {
        guard let mpi = joined?.mpi else { return }
        _ = mpi.finalize()
    }

    /// Ends every rank of the job: called when one rank hits an error the others cannot see, so that they do
    /// not wait forever in a collective call.
    public func abort(code: Int32 = 1) {
        guard let mpi else { return }
        _ = mpi.abort(mpi.world, code)
    }

    private static func check(_ status: Int32, _ call: String) throws {
        guard status == 0 else { throw HoneError.invalidArgument("\(call) failed with MPI error code \(status)") }
    }

    // MARK: - Collectives

    /// Largest element count per MPI call (counts are C ints).
    private static let chunk = 1 << 28

    /// Copies `buffers` from rank `root` to every other rank.
    public func broadcast(_ buffers: [FloatBuffer], from root: Int = 0) throws {
        guard let mpi, size > 1 else { return }
        for buffer in buffers {
            var start = 0
            while start < buffer.count {
                let count = min(Self.chunk, buffer.count - start)
                try Self.check(mpi.broadcast(buffer.pointer + start, Int32(count), mpi.float, Int32(root), mpi.world), "MPI_Bcast")
                start += count
            }
        }
    }

    /// `values` as rank `root` has them, on every rank.
    public func broadcast(_ values: [Double], from root: Int = 0) throws -> [Double] {
        guard let mpi, size > 1 else { return values }
        var copy = values
        try copy.withUnsafeMutableBytes {
            try Self.check(mpi.broadcast($0.baseAddress, Int32(values.count), mpi.double, Int32(root), mpi.world), "MPI_Bcast")
        }
        return copy
    }

    /// Every rank's `data`, in rank order, on every rank.
    public func allGather(_ data: Data) throws -> [Data] {
        guard let mpi, size > 1 else { return [data] }
        var length = Int32(data.count)
        var lengths = [Int32](repeating: 0, count: size)
        try lengths.withUnsafeMutableBytes {
            try Self.check(mpi.allgather(&length, 1, mpi.int32, $0.baseAddress, 1, mpi.int32, mpi.world), "MPI_Allgather")
        }
        var offsets = [Int32](repeating: 0, count: size)
        for index in 1..<size { offsets[index] = offsets[index - 1] + lengths[index - 1] }
        let total = Int(offsets[size - 1] + lengths[size - 1])
        var gathered = Data(count: max(total, 1))
        try data.withUnsafeBytes { send in
            try gathered.withUnsafeMutableBytes { receive in
                try Self.check(mpi.allgatherv(send.baseAddress, length, mpi.byte, receive.baseAddress, lengths, offsets,
                                              mpi.byte, mpi.world), "MPI_Allgatherv")
            }
        }
        return (0..<size).map { gathered.subdata(in: Int(offsets[$0])..<Int(offsets[$0] + lengths[$0])) }
    }

    /// Every rank's JSON-encodable value, in rank order, on every rank.
    public func allGather<Value: Codable>(_ value: Value) throws -> [Value] {
        guard size > 1 else { return [value] }
        // Metrics may hold a NaN that the caller wants to report rather than fail on here.
        let encoder = JSONEncoder()
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try allGather(try encoder.encode(value)).map { try decoder.decode(Value.self, from: $0) }
    }

    /// Waits until every rank arrives.
    public func barrier() throws {
        guard let mpi, size > 1 else { return }
        try Self.check(mpi.barrier(mpi.world), "MPI_Barrier")
    }
}
