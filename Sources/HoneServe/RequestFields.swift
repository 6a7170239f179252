import Foundation
import HoneKit

// MARK: - Reading request fields

/// A JSON request body's fields, read with their types checked: a wrong type or value is a 400 naming the field.
struct RequestFields {
    let fields: JinjaDictionary

    init(body: Data) throws {
        let value: JinjaValue
        do {
            value = try JinjaValue(jsonData: body)
        } catch {
            throw APIError.invalid("The request body is not valid JSON: \(error)")
        }
        guard case .dictionary(let fields) = value else { throw APIError.invalid("The request body must be a JSON object.") }
        self.fields = fields
    }

    init(_ fields: JinjaDictionary) { self.fields = fields }

    /// The field's value; nil when absent or null.
    func value(_ name: String) -> JinjaValue? {
        guard let value = fields[name] else { return nil }
        if case .none = value { return nil }
        return value
    }

    func has(_ name: String) -> Bool { value(name) != nil }

    func string(_ name: String) throws -> String? {
        guard let value = value(name) else { return nil }
        guard case .string(let text) = value else { throw APIError.invalid("'\(name)' must be a string.", param: name) }
        return text
    }

    func bool(_ name: String) throws -> Bool? {
        guard let value = value(name) else { return nil }
        guard case .bool(let flag) = value else { throw APIError.invalid("'\(name)' must be true or false.", param: name) }
        return flag
    }

    func int(_ name: String, range: ClosedRange<Int>? = nil) throws -> Int? {
        guard let value = value(name) else { return nil }
        let number: Int
        switch value {
        case .int(let integer): number = integer
        case .double(let real) where real == real.rounded() && abs(real) < 1e15: number = Int(real)
        default: throw APIError.invalid("'\(name)' must be an integer.", param: name)
        }
        if let range, !range.contains(number) {
            throw APIError.invalid("'\(name)' must be between \(range.lowerBound) and \(range.upperBound), got \(number).", param: name)
        }
        return number
    }

    func number(_ name: String, range: ClosedRange<Double>? = nil) throws -> Double? {
        guard let value = value(name) else { return nil }
        let number: Double
        switch value {
        case .int(let integer): number = Double(integer)
        case .double(let real): number = real
        default: throw APIError.invalid("'\(name)' must be a number.", param: name)
        }
        guard number.isFinite else { throw APIError.invalid("'\(name)' must be a finite number.", param: name) }
        if let range, !range.contains(number) {
            throw APIError.invalid("'\(name)' must be between \(range.lowerBound) and \(range.upperBound), got \(number).", param: name)
        }
        return number
    }

    func object(_ name: String) throws -> RequestFields? {
        guard let value = value(name) else { return nil }
        guard case .dictionary(let fields) = value else { throw APIError.invalid("'\(name)' must be an object.", param: name) }
        return RequestFields(fields)
    }

    /// `stop`: a string or a list of strings (at most 4 in OpenAI's API; more are accepted).
    func stop() throws -> [String] {
        guard let value = value("stop") else { return [] }
        switch value {
        case .string(let text): return [text]
        case .array(let items):
            return try items.map {
                guard case .string(let text) = $0 else { throw APIError.invalid("'stop' must be a string or a list of strings.", param: "stop") }
                return text
            }
        default: throw APIError.invalid("'stop' must be a string or a list of strings.", param: "stop")
        }
    }
}
