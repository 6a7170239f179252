import Foundation
#if canImport(Glibc)
import Glibc
#endif

// MARK: - A plain TCP connection speaking HTTP/1.1 by hand

/// One loopback TCP connection driven byte by byte, for what an HTTP client library hides: several requests on one
/// connection, requests sent slowly or cut short, and whether the server closed the connection.
final class RawConnection: @unchecked Sendable {
    let descriptor: Int32
    private var pending: [UInt8] = []

    init(port: Int, receiveTimeout: Double = 120) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw RawError.failed("socket") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(descriptor)
            throw RawError.failed("connect")
        }
        setReceiveTimeout(receiveTimeout)
    }

    deinit { close(descriptor) }

    enum RawError: Error { case failed(String), closed, timedOut }

    func setReceiveTimeout(_ seconds: Double) {
        var value = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - seconds.rounded(.down)) * 1e6))
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
    }

    func send(_ text: String) throws { try send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard written > 0 else { throw RawError.failed("send") }
            offset += written
        }
    }

    /// More bytes; throws `closed` at the end of the stream and `timedOut` when nothing came in time.
    private func fill() throws {
        var buffer = [UInt8](repeating: 0, count: 65536)
        let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
        if count == 0 { throw RawError.closed }
        if count < 0 { throw errno == EAGAIN || errno == EWOULDBLOCK ? RawError.timedOut : RawError.failed("recv \(errno)") }
        pending += buffer[0..<count]
    }

    /// Whether the server closed the connection (the read ends) within the receive timeout.
    func isClosedByServer() -> Bool {
        do {
            while true { try fill() }
        } catch RawError.closed {
            return true
        } catch {
            // A reset also means closed.
            if case RawError.failed = error { return true }
            return false
        }
    }

    private func line() throws -> String {
        while true {
            if let end = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let bytes = pending[..<end]
                pending.removeSubrange(...end)
                return String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            }
            try fill()
        }
    }

    private func bytes(_ count: Int) throws -> [UInt8] {
        while pending.count < count { try fill() }
        let result = Array(pending[..<count])
        pending.removeFirst(count)
        return result
    }

    struct Response {
        let status: Int
        let headers: [String: String]
        let body: String
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:] }
    }

    /// Reads one response (fixed length or chunked).
    func response() throws -> Response {
        let statusLine = try line()
        let parts = statusLine.split(separator: " ")
        guard parts.count >= 2, let status = Int(parts[1]) else { throw RawError.failed("status line '\(statusLine)'") }
        var headers: [String: String] = [:]
        while true {
            let header = try line()
            if header.isEmpty { break }
            if let colon = header.firstIndex(of: ":") {
                headers[header[..<colon].lowercased()] = header[header.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        var body: [UInt8] = []
        if headers["transfer-encoding"]?.lowercased() == "chunked" {
            while true {
                guard let size = Int(try line(), radix: 16) else { throw RawError.failed("chunk size") }
                if size == 0 {
                    _ = try line()
                    break
                }
                body += try bytes(size)
                _ = try line()
            }
        } else {
            body = try bytes(Int(headers["content-length"] ?? "0") ?? 0)
        }
        return Response(status: status, headers: headers, body: String(decoding: body, as: UTF8.self))
    }

    /// A POST of a JSON body with its length.
    static func post(_ path: String, _ body: String, close: Bool = false) -> String {
        "POST \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n"
            + (close ? "Connection: close\r\n" : "") + "\r\n" + body
    }
}
