//! The console's files, embedded in the binary: one HTML shell for every page (the pages are drawn by the
//! ES modules), the modules, the style sheet and the i18n dictionaries. Each has a strong ETag (a prefix of
//! its SHA-256), so a browser revalidates cheaply and never runs a stale module after an upgrade.

use std::sync::OnceLock;

use sha2::{Digest, Sha256};

/// One embedded file.
pub struct Asset {
    pub name: &'static str,
    pub bytes: &'static [u8],
    pub content_type: &'static str,
    etag: OnceLock<String>,
}

impl Asset {
    const fn new(name: &'static str, bytes: &'static [u8], content_type: &'static str) -> Asset {
        Asset { name, bytes, content_type, etag: OnceLock::new() }
    }

    /// `"<first 16 bytes of the SHA-256, hex>"`, quoted as an ETag is.
    pub fn etag(&self) -> &str {
        self.etag.get_or_init(|| format!("\"{}\"", hex::encode(&Sha256::digest(self.bytes)[..16])))
    }
}

const JS: &str = "text/javascript; charset=utf-8";

static ASSETS: [Asset; 10] = [
    Asset::new("index.html", include_bytes!("../assets/index.html"), "text/html; charset=utf-8"),
    Asset::new("style.css", include_bytes!("../assets/style.css"), "text/css; charset=utf-8"),
    Asset::new("app.js", include_bytes!("../assets/app.js"), JS),
    Asset::new("api.js", include_bytes!("../assets/api.js"), JS),
    Asset::new("dom.js", include_bytes!("../assets/dom.js"), JS),
    Asset::new("i18n.js", include_bytes!("../assets/i18n.js"), JS),
    Asset::new("chart.js", include_bytes!("../assets/chart.js"), JS),
    Asset::new("events.js", include_bytes!("../assets/events.js"), JS),
    Asset::new("pages.js", include_bytes!("../assets/pages.js"), JS),
    Asset::new("favicon.svg", include_bytes!("../assets/favicon.svg"), "image/svg+xml"),
];

/// The asset named `name` (`/console/assets/<name>`), if there is one.
pub fn asset(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}

/// The HTML shell every console page is served as.
pub fn index_html() -> &'static Asset {
    &ASSETS[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_found_by_name_with_a_stable_etag() {
        for a in &ASSETS {
            let found = asset(a.name).unwrap();
            assert_eq!(found.etag(), a.etag());
            assert_eq!(found.etag().len(), 34);
        }
        assert!(asset("../Cargo.toml").is_none());
        assert!(asset("").is_none());
    }

    #[test]
    fn the_shell_has_no_inline_script_and_no_external_url() {
        let html = std::str::from_utf8(index_html().bytes).unwrap();
        assert!(html.contains("<script type=\"module\" src=\"/console/assets/app.js\"></script>"));
        assert!(!html.contains("<script>"), "CSP forbids inline script");
        for a in &ASSETS {
            // The SVG namespace is a name, not a fetch.
            let text = String::from_utf8_lossy(a.bytes).replace("http://www.w3.org/2000/svg", "");
            assert!(!text.contains("http://") && !text.contains("https://"), "{} names an external URL", a.name);
        }
    }
}
