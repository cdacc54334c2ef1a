import Foundation
import NIOCore
import TocsinCrypto

/// The dashboard's files, read once at start from the module's resources.
struct DashboardAssets: Sendable {
    struct Asset: Sendable {
        var body: ByteBuffer
        var contentType: String
        var etag: String
    }

    let assets: [String: Asset]

    static let contentTypes = [
        "html": "text/html; charset=utf-8", "js": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8",
        "svg": "image/svg+xml", "png": "image/png", "woff2": "font/woff2", "ico": "image/x-icon",
    ]

    static func load() throws -> DashboardAssets {
        guard let directory = Bundle.module.url(forResource: "Dashboard", withExtension: nil) else {
            throw ResourceError.missing
        }
        var assets: [String: Asset] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: directory.path) {
            let ext = String(name.split(separator: ".").last ?? "")
            guard let type = contentTypes[ext] else { continue }
            let data = try Data(contentsOf: directory.appendingPathComponent(name))
            let etag = "\"" + Crypto.hex(Crypto.sha256(data).prefix(12)) + "\""
            assets[name] = Asset(body: ByteBuffer(bytes: data), contentType: type, etag: etag)
        }
        guard assets["index.html"] != nil else { throw ResourceError.missing }
        return DashboardAssets(assets: assets)
    }

    enum ResourceError: Error, CustomStringConvertible {
        case missing
        var description: String { "the dashboard's files (tocsin_TocsinAPI.resources) are missing beside the binary" }
    }
}
