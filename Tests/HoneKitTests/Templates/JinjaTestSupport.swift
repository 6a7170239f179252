@testable import HoneKit
import Foundation
import Testing

/// Where the template tests find their data, worked out from this file's location so the same code runs
/// in the standalone package (Tests/JinjaTests/) and in Hone (Tests/HoneKitTests/Templates/).
enum JinjaTestPaths {
    /// The nearest folder above this file that has Fixtures/templates.
    static let fixtures: URL? = {
        var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while dir.path != "/" {
            let candidate = dir.appendingPathComponent("Fixtures/templates")
            if FileManager.default.fileExists(atPath: candidate.path) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return nil
    }()

    /// The repository root: the nearest folder above this file with a Package.swift.
    static let repositoryRoot: URL = {
        var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while dir.path != "/" {
            if FileManager.default.fileExists(atPath: dir.appendingPathComponent("Package.swift").path) { return dir }
            dir = dir.deletingLastPathComponent()
        }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    }()

    /// The real chat templates (shared data, not in the repository): ../shared/data/chat-templates.
    static let chatTemplates = repositoryRoot.deletingLastPathComponent().appendingPathComponent("shared/data/chat-templates")

    static var chatTemplatesAvailable: Bool {
        FileManager.default.fileExists(atPath: chatTemplates.path)
    }
}

/// Renders `source` with jinja2's default options or transformers' (the default here).
func renderJinja(_ source: String, _ context: [String: JinjaValue] = [:], options: JinjaOptions = .transformers) throws -> String {
    try JinjaTemplate(source, options: options).render(context)
}
