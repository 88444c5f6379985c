//! Sigstore's `trusted_root.json` (media type
//! `application/vnd.dev.sigstore.trustedroot+json`): the certificate
//! authorities keyless certificates chain to, and the transparency logs whose
//! keys sign entry timestamps, each trusted for a window of time.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

use super::keys::PublicKey;

/// The parts of a trusted root hoist verifies with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedRoot {
    /// Where it was read from (for messages).
    pub name: String,
    /// Certificate authorities (Fulcio).
    pub authorities: Vec<Authority>,
    /// Transparency logs (Rekor).
    pub logs: Vec<Log>,
}

/// A certificate authority: its chain (issuing certificate first) and when
/// it may have issued certificates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authority {
    /// DER certificates, as the trusted root lists them.
    pub certificates: Vec<Vec<u8>>,
    /// When it is trusted.
    pub valid: Window,
}

/// A transparency log: its key, the key's id (SHA-256 of its DER), and when
/// it signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Log {
    /// The log id: SHA-256 of the key's `SubjectPublicKeyInfo`.
    pub id: Vec<u8>,
    /// The key that signs entry timestamps.
    pub key: PublicKey,
    /// When it is trusted.
    pub valid: Window,
}

/// A span of Unix seconds; an open end is unbounded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Window {
    /// From (inclusive).
    pub start: Option<i64>,
    /// Until (inclusive).
    pub end: Option<i64>,
}

impl Window {
    /// Whether `time` (Unix seconds) is inside.
    pub fn contains(&self, time: i64) -> bool {
        self.start.is_none_or(|s| s <= time) && self.end.is_none_or(|e| time <= e)
    }
}

/// Why a trusted root cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TrustedRootError {
    /// Not the JSON of a trusted root.
    #[error("not a sigstore trusted_root.json: {0}")]
    Json(String),
    /// A field that must be base64 is not.
    #[error("{0} is not base64")]
    Base64(&'static str),
    /// A log key that is not a key.
    #[error("the key of log {log}: {why}")]
    LogKey {
        /// The log's base URL.
        log: String,
        /// What is wrong.
        why: super::keys::KeyError,
    },
    /// A date that is not RFC 3339.
    #[error("`{0}` is not an RFC 3339 time")]
    Time(String),
    /// Nothing to trust.
    #[error("it lists no certificate authority and no transparency log")]
    Empty,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRoot {
    #[serde(default)]
    tlogs: Vec<RawLog>,
    #[serde(default)]
    certificate_authorities: Vec<RawAuthority>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLog {
    #[serde(default)]
    base_url: String,
    public_key: RawKey,
    log_id: RawLogId,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawKey {
    raw_bytes: String,
    #[serde(default)]
    valid_for: RawWindow,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLogId {
    key_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAuthority {
    cert_chain: RawChain,
    #[serde(default)]
    valid_for: RawWindow,
}

#[derive(Deserialize)]
struct RawChain {
    certificates: Vec<RawCertificate>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCertificate {
    raw_bytes: String,
}

#[derive(Default, Deserialize)]
struct RawWindow {
    start: Option<String>,
    end: Option<String>,
}

impl TrustedRoot {
    /// Parses the JSON of a trusted root.
    pub fn from_json(name: &str, json: &str) -> Result<TrustedRoot, TrustedRootError> {
        let raw: RawRoot =
            serde_json::from_str(json).map_err(|e| TrustedRootError::Json(e.to_string()))?;
        let mut logs = Vec::new();
        for log in raw.tlogs {
            let der = STANDARD
                .decode(&log.public_key.raw_bytes)
                .map_err(|_| TrustedRootError::Base64("tlogs[].publicKey.rawBytes"))?;
            let key = PublicKey::from_spki_der(&log.base_url, &der).map_err(|why| {
                TrustedRootError::LogKey {
                    log: log.base_url.clone(),
                    why,
                }
            })?;
            logs.push(Log {
                id: STANDARD
                    .decode(&log.log_id.key_id)
                    .map_err(|_| TrustedRootError::Base64("tlogs[].logId.keyId"))?,
                key,
                valid: window(&log.public_key.valid_for)?,
            });
        }
        let mut authorities = Vec::new();
        for authority in raw.certificate_authorities {
            let certificates = authority
                .cert_chain
                .certificates
                .iter()
                .map(|c| STANDARD.decode(&c.raw_bytes))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| {
                    TrustedRootError::Base64("certificateAuthorities[].certChain.certificates[]")
                })?;
            authorities.push(Authority {
                certificates,
                valid: window(&authority.valid_for)?,
            });
        }
        if logs.is_empty() && authorities.is_empty() {
            return Err(TrustedRootError::Empty);
        }
        Ok(TrustedRoot {
            name: name.to_string(),
            authorities,
            logs,
        })
    }
}

fn window(raw: &RawWindow) -> Result<Window, TrustedRootError> {
    let time = |t: &Option<String>| {
        t.as_deref()
            .map(|t| unix_seconds(t).ok_or_else(|| TrustedRootError::Time(t.to_string())))
            .transpose()
    };
    Ok(Window {
        start: time(&raw.start)?,
        end: time(&raw.end)?,
    })
}

/// Unix seconds of an RFC 3339 UTC time (`2021-01-12T11:53:27.000Z`);
/// fractions are dropped, offsets other than `Z` are honoured.
pub fn unix_seconds(text: &str) -> Option<i64> {
    let (date, time) = text.split_once(['T', 't'])?;
    let mut date = date.splitn(3, '-').map(str::parse::<i64>);
    let (year, month, day) = (date.next()?.ok()?, date.next()?.ok()?, date.next()?.ok()?);
    let (clock, offset) = match time.find(['Z', 'z', '+', '-']) {
        Some(at) => time.split_at(at),
        None => return None,
    };
    let clock = clock.split('.').next()?;
    let mut clock = clock.splitn(3, ':').map(str::parse::<i64>);
    let (hour, minute, second) = (
        clock.next()?.ok()?,
        clock.next()?.ok()?,
        clock.next()?.ok()?,
    );
    let offset = match offset.as_bytes().first()? {
        b'Z' | b'z' => 0,
        sign => {
            let (h, m) = offset[1..].split_once(':')?;
            let minutes = h.parse::<i64>().ok()? * 60 + m.parse::<i64>().ok()?;
            if *sign == b'-' { -minutes } else { minutes }
        }
    };
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hour * 3600 + minute * 60 + second - offset * 60)
}
