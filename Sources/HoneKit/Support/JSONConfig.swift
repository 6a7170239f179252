import Foundation

/// Typed access to a JSON object with errors that name the file and key.
struct JSONConfig {
    let values: [String: Any]
    let path: String

    init(path: String) throws {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            // A directory or an unreadable file is not "no such file".
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
                throw HoneError.io(path: path, message: isDirectory.boolValue ? "is a directory, expected a file" : "cannot read file")
            }
            throw HoneError.fileNotFound(path: path)
        }
        let object: Any
        do {
            object = try parseJSON(data)
        } catch {
            throw HoneError.malformedFile(path: path, message: "not valid JSON (truncated or corrupt)")
        }
        guard let dictionary = object as? [String: Any] else {
            throw HoneError.malformedFile(path: path, message: "expected a JSON object")
        }
        self.init(values: dictionary, path: path)
    }

    init(values: [String: Any], path: String) {
        self.values = values
        self.path = path
    }

    func has(_ key: String) -> Bool { values[key] != nil && !(values[key] is NSNull) }

    func int(_ key: String) throws -> Int {
        guard let value = values[key], !(value is NSNull) else { throw HoneError.missingConfigKey(path: path, key: key) }
        guard let integer = jsonInteger(value) else {
            throw HoneError.invalidConfig(path: path, message: "'\(key)' must be an integer")
        }
        return integer
    }

    func int(_ key: String, default fallback: Int) throws -> Int { has(key) ? try int(key) : fallback }

    func double(_ key: String) throws -> Double {
        guard let value = values[key], !(value is NSNull) else { throw HoneError.missingConfigKey(path: path, key: key) }
        guard let number = jsonDouble(value) else {
            throw HoneError.invalidConfig(path: path, message: "'\(key)' must be a number")
        }
        return number
    }

    func double(_ key: String, default fallback: Double) throws -> Double { has(key) ? try double(key) : fallback }

    /// A list of numbers (LongRoPE's short_factor, long_factor).
    func doubles(_ key: String) throws -> [Double] {
        guard let value = values[key], !(value is NSNull) else { throw HoneError.missingConfigKey(path: path, key: key) }
        guard let list = value as? [Any] else { throw HoneError.invalidConfig(path: path, message: "'\(key)' must be a list of numbers") }
        return try list.map { item in
            guard let number = jsonDouble(item) else {
                throw HoneError.invalidConfig(path: path, message: "'\(key)' must be a list of numbers")
            }
            return number
        }
    }

    func bool(_ key: String, default fallback: Bool) throws -> Bool {
        guard has(key) else { return fallback }
        guard let value = values[key] as? Bool else {
            throw HoneError.invalidConfig(path: path, message: "'\(key)' must be true or false")
        }
        return value
    }

    func string(_ key: String) -> String? { values[key] as? String }

    func object(_ key: String) -> JSONConfig? {
        (values[key] as? [String: Any]).map { JSONConfig(values: $0, path: "\(path) \(key)") }
    }

    /// An id or a list of ids (`eos_token_id` may be either). A negative id means none: transformers never
    /// matches it (early LLaMA conversions write `pad_token_id: -1`).
    func ids(_ key: String) -> [Int] {
        if let value = values[key], let id = jsonInteger(value) { return id >= 0 ? [id] : [] }
        if let list = values[key] as? [Any] { return list.compactMap(jsonInteger).filter { $0 >= 0 } }
        return []
    }
}
