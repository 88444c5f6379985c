//! Reads `promotions.toml` into the model while collecting every problem it
//! can find, each tied to a field path that [`super::source::ConfigSource`]
//! turns into a span.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::model::{Config, Promotion, RegistryConfig, Settings};
use super::problem::{FieldPath, Part, Problem, did_you_mean};
use crate::registry::distribution::credentials::CredentialSource;
use crate::registry::spec::RegistrySpec;

/// The top-level keys of the file.
const TOP_LEVEL: [&str; 3] = ["settings", "registries", "promotion"];

/// The model of a file, what its registries are, and its problems.
pub struct Model {
    /// The file as written; unusable parts are left out.
    pub config: Config,
    /// Each registry that makes sense, parsed.
    pub registries: BTreeMap<String, RegistrySpec>,
    /// Everything wrong with it.
    pub problems: Vec<Problem>,
}

/// Builds the model from a parsed document; unusable parts are left out and
/// reported.
pub fn model(root: &DeTable<'_>) -> Model {
    let mut problems = Vec::new();
    let mut config = Config::default();
    let mut registries = BTreeMap::new();
    for (key, value) in root {
        let path = FieldPath::root(key.get_ref());
        match key.get_ref().as_ref() {
            "settings" => {
                if let Some(settings) = item::<Settings>(value, &path, &mut problems) {
                    check_settings(&settings, &path, &mut problems);
                    config.settings = settings;
                }
            }
            "registries" => {
                let Some(table) = table(value, &path, "[registries.NAME]", &mut problems) else {
                    continue;
                };
                for (name, value) in table {
                    let name = name.get_ref().to_string();
                    let path = path.key(&name);
                    // A broken registry keeps its name, so rules naming it are not
                    // reported a second time as naming no registry.
                    let registry = item::<RegistryConfig>(value, &path, &mut problems);
                    if let Some(spec) = registry
                        .as_ref()
                        .and_then(|r| registry_spec(r, &path, &mut problems))
                    {
                        registries.insert(name.clone(), spec);
                    }
                    config.registries.insert(name, registry.unwrap_or_default());
                }
            }
            "promotion" => {
                let Some(items) = value.get_ref().as_array() else {
                    problems.push(
                        Problem::at(path, "`promotion` must be an array of tables")
                            .help("write each rule as a `[[promotion]]` table"),
                    );
                    continue;
                };
                for (index, value) in items.iter().enumerate() {
                    let path = FieldPath::promotion(index);
                    if let Some(promotion) = item::<Promotion>(value, &path, &mut problems) {
                        config.promotions.push(promotion);
                    } else {
                        config.promotions.push(broken_promotion());
                    }
                }
            }
            other => problems.push(
                Problem::at(path, format!("unknown section `{other}`"))
                    .part(Part::Key)
                    .label("not a hoist setting")
                    .help(did_you_mean(other, &TOP_LEVEL, "sections")),
            ),
        }
    }
    Model {
        config,
        registries,
        problems,
    }
}

/// A placeholder for a `[[promotion]]` that could not be read: it keeps the
/// index of every later rule equal to its position in the file.
fn broken_promotion() -> Promotion {
    Promotion {
        name: BROKEN.to_string(),
        from: String::new(),
        to: super::OneOrMany::Many(Vec::new()),
        repositories: Vec::new(),
        target: None,
        tags: Vec::new(),
        semver: None,
        prerelease: false,
        latest: None,
        pin: BTreeMap::new(),
        tag: None,
        floating: Vec::new(),
        keep_source_tag: false,
        overwrite: Default::default(),
        platforms: Vec::new(),
        referrers: false,
        mode: Default::default(),
        require_signature: None,
        require_record: None,
        prune: None,
        max_prune: None,
        require_attestation: Vec::new(),
    }
}

/// The name of a placeholder rule: a NUL, which no rule name can sensibly hold.
const BROKEN: &str = "\u{0}";

/// Whether a `[[promotion]]` is the placeholder of an unreadable one.
pub fn is_broken(promotion: &Promotion) -> bool {
    promotion.name == BROKEN
}

fn table<'a, 'i>(
    value: &'a Spanned<DeValue<'i>>,
    path: &FieldPath,
    shape: &str,
    problems: &mut Vec<Problem>,
) -> Option<&'a DeTable<'i>> {
    let table = value.get_ref().as_table();
    if table.is_none() {
        problems.push(
            Problem::at(
                path.clone(),
                format!(
                    "`{path}` must be a table, not {}",
                    value.get_ref().type_str()
                ),
            )
            .help(format!("write it as {shape}")),
        );
    }
    table
}

/// Deserializes one table: unknown keys are each reported with the nearest
/// valid key, then the rest goes through serde for types and required keys.
fn item<T: DeserializeOwned + schemars::JsonSchema>(
    value: &Spanned<DeValue<'_>>,
    path: &FieldPath,
    problems: &mut Vec<Problem>,
) -> Option<T> {
    let table = table(value, path, "a table", problems)?;
    let known = fields::<T>();
    let mut known_only = table.clone();
    for key in table.keys() {
        let key = key.get_ref();
        if !known.iter().any(|k| k == key.as_ref()) {
            let candidates: Vec<&str> = known.iter().map(String::as_str).collect();
            problems.push(
                Problem::at(path.key(key), format!("unknown key `{key}` in `{path}`"))
                    .part(Part::Key)
                    .label("unknown key")
                    .help(did_you_mean(key, &candidates, "keys")),
            );
            known_only.remove(key.as_ref());
        }
    }
    // Each bad value is reported, dropped and the rest tried again, so one
    // wrong type does not hide the problems after it.
    let mut dropped = Vec::new();
    for _ in 0..=table.len() {
        let deserializer = ValueDeserializer::from(Spanned::new(
            value.span(),
            DeValue::Table(known_only.clone()),
        ));
        let error = match T::deserialize(deserializer) {
            Ok(item) => return Some(item),
            Err(error) => error,
        };
        let culprit = error.span().and_then(|span| {
            known_only
                .iter()
                .find(|(k, v)| k.span().start <= span.start && span.end <= v.span().end)
                .map(|(k, _)| k.get_ref().to_string())
        });
        let missing_dropped = dropped
            .iter()
            .any(|key: &String| error.message().contains(&format!("missing field `{key}`")));
        if !missing_dropped {
            problems.push(serde_problem(path, &error));
        }
        match culprit {
            Some(key) if !missing_dropped => {
                known_only.remove(key.as_str());
                dropped.push(key);
            }
            _ => return None,
        }
    }
    None
}

/// A serde error as a problem, at the span the TOML deserializer reports.
fn serde_problem(path: &FieldPath, error: &toml::de::Error) -> Problem {
    let message = error
        .message()
        .trim_end_matches('\n')
        .replace("expected a sequence", "expected a list")
        .replace("expected usize", "expected a whole number")
        .replace("expected u64", "expected a whole number")
        .replace("expected u32", "expected a whole number")
        .replace("expected f64", "expected a number")
        .replace("expected a map", "expected a table");
    let help = if message.starts_with("missing field") {
        Some(format!("add it to `{path}`"))
    } else if message.starts_with("invalid type") || message.starts_with("unknown variant") {
        Some("see schemas/promotions.schema.json for the expected values".to_string())
    } else {
        None
    };
    let mut problem = match error.span() {
        Some(span) => Problem::spanned(span, message),
        None => Problem::at(path.clone(), message),
    };
    problem.help = help;
    problem
}

/// The keys a model type accepts, read from its JSON Schema so the list can
/// never drift from the serde model.
fn fields<T: schemars::JsonSchema>() -> Vec<String> {
    static CACHE: OnceLock<std::sync::Mutex<BTreeMap<String, Vec<String>>>> = OnceLock::new();
    let name = T::schema_name().to_string();
    let cache = CACHE.get_or_init(Default::default);
    let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
    cache
        .entry(name)
        .or_insert_with(|| {
            let schema = schemars::SchemaGenerator::default().into_root_schema_for::<T>();
            schema
                .get("properties")
                .and_then(|p| p.as_object())
                .map(|p| p.keys().cloned().collect())
                .unwrap_or_default()
        })
        .clone()
}

fn check_settings(settings: &Settings, path: &FieldPath, problems: &mut Vec<Problem>) {
    if settings.jobs == 0 {
        problems.push(Problem::at(path.key("jobs"), "`jobs` must be at least 1"));
    }
    if settings.timeout_secs == 0 {
        problems.push(Problem::at(
            path.key("timeout_secs"),
            "`timeout_secs` must be at least 1",
        ));
    }
    if let Some(record) = &settings.record {
        let at = path.key("record");
        match (&record.key, &record.key_env) {
            (Some(_), Some(_)) => problems.push(
                Problem::at(at, "`record` names both `key` and `key_env`")
                    .help("keep one: the key's file, or the environment variable holding its PEM"),
            ),
            (None, None) => problems.push(
                Problem::at(at, "`record` names no key")
                    .help("give `key = \"keys/promoter.key\"` (a PKCS#8 PEM file) or `key_env = \"VARIABLE\"` (its PEM in the environment)"),
            ),
            _ => {}
        }
    }
}

/// Parses one registry: its address, and the credential settings, which
/// must make sense together. `None` (with the problems) when it cannot be used.
fn registry_spec(
    registry: &RegistryConfig,
    path: &FieldPath,
    problems: &mut Vec<Problem>,
) -> Option<RegistrySpec> {
    let before = problems.len();
    let spec = RegistrySpec::parse(&registry.url)
        .map_err(|error| problems.push(Problem::at(path.key("url"), error.0)))
        .ok();
    let credentials = credential_source(registry, path, problems);
    check_limits(registry, path, problems);
    if problems.len() > before {
        return None;
    }
    match spec? {
        RegistrySpec::Http(mut endpoint) => {
            endpoint.ca_file = registry.ca_file.clone();
            endpoint.insecure = registry.insecure;
            endpoint.chunk_size = registry.upload_chunk_size;
            endpoint.max_connections = registry.max_connections;
            endpoint.requests_per_second = registry.requests_per_second;
            endpoint.credentials = credentials?;
            Some(RegistrySpec::Http(endpoint))
        }
        layout => Some(layout),
    }
}

/// Where a registry's credentials come from: named variables, a ready
/// token, or docker's and podman's login files.
fn credential_source(
    registry: &RegistryConfig,
    path: &FieldPath,
    problems: &mut Vec<Problem>,
) -> Option<CredentialSource> {
    let problem = |key: &str, message: &str| Problem::at(path.key(key), message).part(Part::Key);
    match (
        &registry.username_env,
        &registry.password_env,
        &registry.token_env,
    ) {
        (None, None, None) => Some(CredentialSource::DockerConfig),
        (Some(user), Some(pass), None) => Some(CredentialSource::Env {
            username_env: user.clone(),
            password_env: pass.clone(),
        }),
        (None, None, Some(token)) => Some(CredentialSource::TokenEnv(token.clone())),
        (Some(_), None, _) => {
            problems.push(problem(
                "username_env",
                "`username_env` needs `password_env`",
            ));
            None
        }
        (None, Some(_), _) => {
            problems.push(problem(
                "password_env",
                "`password_env` needs `username_env`",
            ));
            None
        }
        (Some(_), Some(_), Some(_)) => {
            problems.push(
                problem(
                    "token_env",
                    "`token_env` and `username_env`/`password_env` exclude each other",
                )
                .help("name either a ready token or a username and password"),
            );
            None
        }
    }
}

/// Connection limits and chunk sizes that mean something.
fn check_limits(registry: &RegistryConfig, path: &FieldPath, problems: &mut Vec<Problem>) {
    if registry.max_connections == Some(0) {
        problems.push(Problem::at(
            path.key("max_connections"),
            "`max_connections` must be at least 1",
        ));
    }
    if registry
        .requests_per_second
        .is_some_and(|rps| !(rps > 0.0 && rps.is_finite()))
    {
        problems.push(Problem::at(
            path.key("requests_per_second"),
            "`requests_per_second` must be a positive number",
        ));
    }
    if registry.upload_chunk_size == Some(0) {
        problems.push(Problem::at(
            path.key("upload_chunk_size"),
            "`upload_chunk_size` must be at least 1 byte",
        ));
    }
}
