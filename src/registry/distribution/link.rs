//! URL helpers for what registries hand back: `Link` pagination headers,
//! `Location` headers, and the origin check that keeps hoist on the registry.

/// The `rel="next"` target of a `Link` header, e.g. `</v2/_catalog?last=b&n=2>; rel="next"`.
pub fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let part = part.trim();
        let start = part.find('<')?;
        let end = part[start..].find('>')? + start;
        let target = &part[start + 1..end];
        let is_next = part[end + 1..].split(';').any(|param| {
            let param = param.trim();
            let Some((key, value)) = param.split_once('=') else {
                return false;
            };
            key.trim().eq_ignore_ascii_case("rel")
                && value
                    .trim()
                    .trim_matches('"')
                    .split_whitespace()
                    .any(|rel| rel.eq_ignore_ascii_case("next"))
        });
        (is_next && !target.is_empty()).then(|| target.to_string())
    })
}

/// `scheme://authority` of an absolute URL (lowercased); the whole text when it is not one.
pub fn origin(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let scheme = scheme.to_ascii_lowercase();
            let authority = rest
                .split(['/', '?', '#'])
                .next()
                .unwrap_or("")
                .to_ascii_lowercase();
            // `https://reg.io:443` is `https://reg.io`.
            let default_port = match scheme.as_str() {
                "https" => ":443",
                "http" => ":80",
                _ => "",
            };
            let authority = match authority.strip_suffix(default_port) {
                Some(host) if !default_port.is_empty() => host.to_string(),
                _ => authority,
            };
            format!("{scheme}://{authority}")
        }
        None => url.to_string(),
    }
}

/// Resolves `location` (absolute, absolute-path or relative) against `base`.
pub fn resolve(base: &str, location: &str) -> String {
    if location.contains("://") {
        return location.to_string();
    }
    if let Some(rest) = location.strip_prefix("//") {
        let scheme = base.split_once("://").map_or("https", |(s, _)| s);
        return format!("{scheme}://{rest}");
    }
    let base_origin = origin(base);
    if location.starts_with('/') {
        return format!("{base_origin}{location}");
    }
    // Relative to the directory of the base path.
    let path = base[base_origin.len()..]
        .split(['?', '#'])
        .next()
        .unwrap_or("");
    let dir = path.rfind('/').map_or("/", |i| &path[..=i]);
    format!("{base_origin}{dir}{location}")
}

/// Appends `key=value` to a URL's query.
pub fn with_query(url: &str, key: &str, value: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{key}={}", percent_encode(value))
}

/// Percent-encodes a query value (everything but unreserved characters).
pub fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_next_link() {
        assert_eq!(
            next_link(r#"</v2/_catalog?last=b&n=2>; rel="next""#).as_deref(),
            Some("/v2/_catalog?last=b&n=2")
        );
        assert_eq!(
            next_link(r#"<https://x/a>; rel="prev", <https://x/b>; rel=next"#).as_deref(),
            Some("https://x/b")
        );
        assert_eq!(next_link(r#"<https://x/a>; rel="prev""#), None);
        assert_eq!(next_link("garbage"), None);
        assert_eq!(next_link("<>; rel=next"), None);
    }

    #[test]
    fn resolves_and_compares_origins() {
        let base = "http://127.0.0.1:5000";
        assert_eq!(resolve(base, "/v2/x?y=1"), "http://127.0.0.1:5000/v2/x?y=1");
        assert_eq!(resolve("http://h/v2/a/b", "c"), "http://h/v2/a/c");
        assert_eq!(resolve(base, "//evil.example/x"), "http://evil.example/x");
        assert_eq!(origin("HTTP://Reg.IO:443/v2/?x"), "http://reg.io:443");
        assert_eq!(origin("https://reg.io:443/v2/"), origin("https://reg.io"));
        assert_ne!(
            origin("http://127.0.0.1:5000/x"),
            origin("http://127.0.0.1:5001/x")
        );
    }

    #[test]
    fn encodes_query_values() {
        assert_eq!(
            percent_encode("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
        assert_eq!(
            with_query("http://h/u?_state=x", "digest", "sha256:ab"),
            "http://h/u?_state=x&digest=sha256%3Aab"
        );
    }
}
