//! A platform to keep from a multi-platform index (`os/arch[/variant]`),
//! parsed once where a rule or `--platform` names it.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// `os/arch` or `os/arch/variant`, e.g. `linux/amd64`, `linux/arm64/v8`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Platform {
    os: String,
    architecture: String,
    variant: Option<String>,
}

/// Why a string is not a platform.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a platform: expected OS/ARCH or OS/ARCH/VARIANT, e.g. linux/arm64/v8")]
pub struct InvalidPlatform(pub String);

impl Platform {
    /// Whether an index entry built for this OS, architecture and variant is
    /// this platform; without a variant here, any variant matches.
    pub fn matches(&self, os: &str, architecture: &str, variant: Option<&str>) -> bool {
        self.os == os
            && self.architecture == architecture
            && self.variant.as_deref().is_none_or(|v| variant == Some(v))
    }
}

impl FromStr for Platform {
    type Err = InvalidPlatform;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts[..] {
            [os, architecture, ref variant @ ..]
                if variant.len() <= 1 && parts.iter().all(|p| !p.is_empty()) =>
            {
                Ok(Platform {
                    os: os.to_string(),
                    architecture: architecture.to_string(),
                    variant: variant.first().map(ToString::to_string),
                })
            }
            _ => Err(InvalidPlatform(s.to_string())),
        }
    }
}

impl TryFrom<String> for Platform {
    type Error = InvalidPlatform;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<Platform> for String {
    fn from(value: Platform) -> Self {
        value.to_string()
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

/// In schemas, a string of two or three non-empty `/`-separated parts.
impl JsonSchema for Platform {
    fn schema_name() -> Cow<'static, str> {
        "Platform".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "`os/arch` or `os/arch/variant`, e.g. `linux/amd64`, `linux/arm64/v8`.",
            "type": "string",
            "pattern": "^[^/]+/[^/]+(/[^/]+)?$"
        })
    }
}

/// Platforms as people list them: `linux/amd64, linux/arm64`.
pub fn join(platforms: &[Platform]) -> String {
    platforms
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_two_or_three_parts() {
        for text in ["linux/amd64", "linux/arm64/v8", "windows/amd64"] {
            let platform: Platform = text.parse().unwrap();
            assert_eq!(platform.to_string(), text);
        }
        let arm: Platform = "linux/arm64/v8".parse().unwrap();
        assert_eq!(arm.variant.as_deref(), Some("v8"));
    }

    #[test]
    fn rejects_what_is_not_os_arch_variant() {
        for bad in [
            "",
            "linux",
            "linux/",
            "/amd64",
            "linux//v8",
            "a/b/c/d",
            "linux/arm64/",
        ] {
            let err = bad.parse::<Platform>().unwrap_err();
            assert_eq!(err, InvalidPlatform(bad.to_string()));
            assert!(err.to_string().contains("OS/ARCH"), "{err}");
        }
    }

    #[test]
    fn serde_is_the_string() {
        let platform: Platform = "linux/arm64/v8".parse().unwrap();
        let json = serde_json::to_string(&platform).unwrap();
        assert_eq!(json, "\"linux/arm64/v8\"");
        assert_eq!(serde_json::from_str::<Platform>(&json).unwrap(), platform);
        assert!(serde_json::from_str::<Platform>("\"linux\"").is_err());
    }

    #[test]
    fn a_platform_without_variant_matches_any_variant() {
        let any: Platform = "linux/arm64".parse().unwrap();
        let v8: Platform = "linux/arm64/v8".parse().unwrap();
        assert!(any.matches("linux", "arm64", None) && any.matches("linux", "arm64", Some("v8")));
        assert!(v8.matches("linux", "arm64", Some("v8")));
        assert!(!v8.matches("linux", "arm64", None) && !v8.matches("linux", "arm64", Some("v7")));
        let amd64: Platform = "linux/amd64".parse().unwrap();
        assert!(!amd64.matches("linux", "arm64", None));
    }
}
