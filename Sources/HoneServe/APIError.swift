import Foundation
import HTTPTypes
import Hummingbird

// MARK: - Errors in OpenAI's shape

/// An error answered as `{"error": {"message", "type", "param", "code"}}` with its HTTP status.
public struct APIError: Error, HTTPResponseError, CustomStringConvertible {
    public var status: HTTPResponse.Status
    public var message: String
    public var type: String
    public var param: String?
    public var code: String?
    /// Seconds a client should wait (503).
    public var retryAfter: Int?

    public init(status: HTTPResponse.Status, message: String, type: String, param: String? = nil, code: String? = nil,
                retryAfter: Int? = nil) {
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.retryAfter = retryAfter
    }

    public var description: String { message }

    /// A malformed request or field (400).
    public static func invalid(_ message: String, param: String? = nil, code: String? = nil) -> APIError {
        APIError(status: .badRequest, message: message, type: "invalid_request_error", param: param, code: code)
    }

    public static func contextLengthExceeded(tokens: Int, limit: Int, param: String, atLeast: Bool = false) -> APIError {
        invalid("This model's maximum context length is \(limit) tokens, but the prompt has \(atLeast ? "at least " : "")\(tokens) tokens (at least one position must stay free for the answer).",
                param: param, code: "context_length_exceeded")
    }

    public static func unknownModel(_ name: String, available: [String]) -> APIError {
        APIError(status: .notFound, message: "The model '\(name)' does not exist; this server has \(available.map { "'\($0)'" }.joined(separator: ", ")).",
                 type: "invalid_request_error", param: "model", code: "model_not_found")
    }

    public static let unauthorized = APIError(status: .unauthorized, message: "Missing or incorrect API key: send it as 'Authorization: Bearer KEY'.",
                                              type: "invalid_request_error", code: "invalid_api_key")

    public static let queueFull = APIError(status: .serviceUnavailable, message: "The server is busy: every slot is in use and the queue is full; retry later.",
                                           type: "server_error", code: "server_busy", retryAfter: 1)

    /// Too many request bodies arrive at once (their shared budget is spent).
    public static let busy = APIError(status: .serviceUnavailable, message: "The server is receiving too much request data at once; retry later.",
                                      type: "server_error", code: "server_busy", retryAfter: 1)

    public var json: JSONOutput {
        ["error": ["message": .string(message), "type": .string(type), "param": .optional(param), "code": .optional(code)]]
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: json.text)))
    }
}
