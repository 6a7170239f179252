import Foundation
import Hummingbird
import NIOCore

// MARK: - Knowing when a client went away

/// Calls its handlers once, when the connection's client has gone: it closed its side (the input ended) or the
/// connection closed. A client waiting for a whole answer sends nothing more, so this is the only sign that its
/// answer is no longer wanted; the connection itself stays usable for the next request (keep-alive).
final class ConnectionWatch: @unchecked Sendable {
    private let lock = NSLock()
    private var gone = false
    private var handlers: [Int: @Sendable () -> Void] = [:]
    private var nextKey = 0

    /// Registers `handler`; it runs at once if the client has already gone (then nil is returned).
    func onGone(_ handler: @escaping @Sendable () -> Void) -> Int? {
        lock.lock()
        if gone {
            lock.unlock()
            handler()
            return nil
        }
        let key = nextKey
        nextKey += 1
        handlers[key] = handler
        lock.unlock()
        return key
    }

    func remove(_ key: Int?) {
        guard let key else { return }
        lock.lock()
        handlers[key] = nil
        lock.unlock()
    }

    func fire() {
        lock.lock()
        gone = true
        let current = Array(handlers.values)
        handlers.removeAll()
        lock.unlock()
        for handler in current { handler() }
    }
}

/// Sits in each connection's pipeline and fires its watch. NIO reads a connection's end of input even while the
/// request is being answered (the inbound stream is not full), and the server allows half-closed connections, so
/// the end arrives as an `inputClosed` event rather than as a close.
final class ConnectionWatchHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    let watch = ConnectionWatch()

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed { watch.fire() }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        watch.fire()
        context.fireChannelInactive()
    }
}

/// The request context of the server's routes: Hummingbird's basics and the connection the request came on.
public struct ServeContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }

    /// The watch of this request's connection (nil if the connection has no watch, e.g. it already closed).
    func connectionWatch() async -> ConnectionWatch? {
        let channel = self.channel
        return try? await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.handler(type: ConnectionWatchHandler.self).watch
        }.get()
    }

    /// Stops reading the connection: a body that is too slow or too large is not read further, and the connection
    /// closes once the error answer is written.
    func stopReading() {
        channel.close(mode: .input, promise: nil)
    }
}

// MARK: - Bounding request bodies

/// Bytes of request bodies being received at once, across every connection: a request that would pass the budget
/// is answered 503, so many large uploads cannot exhaust memory.
final class BodyBudget: @unchecked Sendable {
    let limit: Int
    private let lock = NSLock()
    private var used = 0

    init(limit: Int) { self.limit = limit }

    func reserve(_ bytes: Int) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard used + bytes <= limit else { return false }
        used += bytes
        return true
    }

    func release(_ bytes: Int) {
        lock.lock()
        used -= bytes
        lock.unlock()
    }

    var inUse: Int {
        lock.lock()
        defer { lock.unlock() }
        return used
    }
}

// MARK: - File descriptors

/// Raises the soft limit on open files to the hard one, so thousands of idle connections do not make accepting
/// new ones fail at the usual soft limit of 1024.
func raiseOpenFileLimit() {
    #if os(Linux)
    let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
    #else
    let resource = RLIMIT_NOFILE
    #endif
    var limit = rlimit()
    guard getrlimit(resource, &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
    limit.rlim_cur = limit.rlim_max
    _ = setrlimit(resource, &limit)
}

/// Bytes a body reader took from the budget (written by the reading task, read after it ended).
final class ReservedBytes: @unchecked Sendable {
    private let lock = NSLock()
    private var bytes = 0
    func add(_ count: Int) { lock.lock(); bytes += count; lock.unlock() }
    var count: Int { lock.lock(); defer { lock.unlock() }; return bytes }
}
