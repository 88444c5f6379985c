//! Registries that want credentials: htpasswd basic auth, bearer tokens, TLS
//! with a private CA, docker's config.json and credential helpers.

use base64::Engine as _;

use crate::support::seed::{self, Format};
use crate::support::{Hoist, TestRegistry};

const USER: &str = "alice";
const PASSWORD: &str = "pa55-w0rd-never-printed";

/// An anonymous source registry holding `app:1.0.0`; returns it and the image digest.
fn source_with_image() -> (TestRegistry, String) {
    let source = TestRegistry::start();
    let manifest = seed::push(
        seed::client(&source).as_ref(),
        "app",
        "1.0.0",
        &seed::small_image("auth", Format::Oci),
    );
    (source, manifest.digest.to_string())
}

fn config(source: &TestRegistry, target_url: &str, target_extra: &str) -> String {
    format!(
        "[registries.src]\nurl = \"{}\"\n\n[registries.dst]\nurl = \"{target_url}\"\n{target_extra}\n",
        source.host()
    )
}

/// Reads `target` back without hoist: `repository` holds exactly the source's
/// `app` tags, each at the source's digest.
fn assert_holds_the_source_image(source: &TestRegistry, target: &TestRegistry, repository: &str) {
    let tags = source.read_tags("app");
    assert_eq!(target.read_tags(repository), tags, "tags of {repository}");
    for tag in &tags {
        assert_eq!(
            target.read_manifest_digest(repository, tag),
            source.read_manifest_digest("app", tag),
            "{repository}:{tag}"
        );
    }
}

fn assert_no_secret(run: &crate::support::hoist::Run) {
    assert!(
        !run.stdout.contains(PASSWORD) && !run.stderr.contains(PASSWORD),
        "secret leaked:\n{}\n{}",
        run.stdout,
        run.stderr
    );
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    assert!(
        !run.stderr.contains(&basic),
        "basic credentials leaked: {}",
        run.stderr
    );
}

#[test]
fn basic_auth_with_credentials_from_environment() {
    let (source, digest) = source_with_image();
    let target = TestRegistry::builder().htpasswd(USER, PASSWORD).start();
    let cfg = config(
        &source,
        target.host(),
        "username_env = \"DST_USER\"\npassword_env = \"DST_PASS\"",
    );

    let run = Hoist::new()
        .config(&cfg)
        .env("DST_USER", USER)
        .env("DST_PASS", PASSWORD)
        .args(["promote", "src/app:1.0.0", "dst/prod/app"])
        .run()
        .success();
    assert!(run.stdout.contains(&digest), "{}", run.stdout);
    assert_no_secret(&run);
    let run = Hoist::new()
        .config(&cfg)
        .env("DST_USER", USER)
        .env("DST_PASS", PASSWORD)
        .args(["ls", "dst/prod/app"])
        .run()
        .success();
    assert_eq!(run.lines(), ["1.0.0"]);

    // A wrong password is refused, and the refusal does not echo it.
    let run = Hoist::new()
        .config(&cfg)
        .env("DST_USER", USER)
        .env("DST_PASS", "wrong-password-xyz")
        .args(["promote", "src/app:1.0.0", "dst/prod/app2"])
        .run()
        .code(1);
    // It says the credentials were refused, by which registry, and where they came from.
    let refused = format!(
        "authentication with {} failed: the registry refused the credentials from the variables DST_USER and DST_PASS",
        target.host()
    );
    assert!(run.stderr.contains(&refused), "{}", run.stderr);
    assert!(!run.stderr.contains("wrong-password-xyz"), "{}", run.stderr);

    // A variable that is not set is an error, not anonymous access.
    let run = Hoist::new()
        .config(&cfg)
        .env("DST_USER", USER)
        .env_remove("DST_PASS")
        .args(["promote", "src/app:1.0.0", "dst/prod/app3"])
        .run()
        .code(1);
    assert!(run.stderr.contains("DST_PASS is not set"), "{}", run.stderr);
}

#[test]
fn bearer_token_auth_push_and_mount() {
    let (source, digest) = source_with_image();
    let target = TestRegistry::builder().token_auth(USER, PASSWORD).start();
    let cfg = config(
        &source,
        target.host(),
        "username_env = \"DST_USER\"\npassword_env = \"DST_PASS\"",
    );
    let hoist = || {
        Hoist::new()
            .config(&cfg)
            .env("DST_USER", USER)
            .env("DST_PASS", PASSWORD)
    };

    let run = hoist()
        .args(["promote", "src/app:1.0.0", "dst/staging/app"])
        .run()
        .success();
    assert!(run.stdout.contains(&digest), "{}", run.stdout);
    assert_no_secret(&run);

    // Inside the token registry: mounted, which needs pull on the source repository.
    let report = hoist()
        .args([
            "promote",
            "dst/staging/app:1.0.0",
            "dst/stable/app",
            "--report",
            "report.json",
        ])
        .run()
        .success()
        .json_file("report.json");
    assert_eq!(report["summary"]["bytes_copied"], 0, "{report:#}");
    assert_eq!(report["summary"]["blobs_mounted"], 3, "{report:#}");
    let scopes = target.token_server().expect("token server").scopes_seen();
    assert!(
        scopes.iter().any(|s| s == "repository:staging/app:pull"),
        "{scopes:?}"
    );
    assert!(
        scopes
            .iter()
            .any(|s| s == "repository:stable/app:pull,push"),
        "{scopes:?}"
    );

    let run = hoist().args(["ls", "dst/stable/app"]).run().success();
    assert_eq!(run.lines(), ["1.0.0"]);

    // Without credentials the token service grants pull only: the push is refused.
    let run = Hoist::new()
        .config(&config(&source, target.host(), ""))
        .args(["promote", "src/app:1.0.0", "dst/other/app"])
        .run()
        .code(1);
    assert!(
        run.stderr.contains("401")
            || run.stderr.contains("UNAUTHORIZED")
            || run.stderr.contains("DENIED"),
        "{}",
        run.stderr
    );
}

#[test]
fn tls_registry_trusted_through_ca_file() {
    let (source, digest) = source_with_image();
    let target = TestRegistry::builder().tls().start();
    let ca = target.ca_file().expect("CA file").display().to_string();
    let cfg = config(&source, &target.url(), &format!("ca_file = \"{ca}\""));
    let run = Hoist::new()
        .config(&cfg)
        .args(["promote", "src/app:1.0.0", "dst/app"])
        .run()
        .success();
    assert!(run.stdout.contains(&digest), "{}", run.stdout);
    assert_holds_the_source_image(&source, &target, "app");

    // Loopback defaults to http, so the https URL is spelled out; without the CA the certificate is refused.
    let run = Hoist::new()
        .config(&config(&source, &target.url(), ""))
        .args(["promote", "src/app:1.0.0", "dst/app2"])
        .run()
        .code(1);
    assert!(
        run.stderr.to_lowercase().contains("certificate"),
        "{}",
        run.stderr
    );
    assert_eq!(target.read_tags("app2"), Vec::<String>::new());

    // `insecure = true` skips verification, when asked explicitly.
    Hoist::new()
        .config(&config(&source, &target.url(), "insecure = true"))
        .args(["promote", "src/app:1.0.0", "dst/app3"])
        .run()
        .success();
    assert_holds_the_source_image(&source, &target, "app3");
}

#[test]
fn docker_config_auths_entry() {
    let (source, digest) = source_with_image();
    let target = TestRegistry::builder()
        .tls()
        .htpasswd(USER, PASSWORD)
        .start();
    let ca = target.ca_file().expect("CA file").display().to_string();
    let cfg = config(&source, &target.url(), &format!("ca_file = \"{ca}\""));

    let hoist = Hoist::new().config(&cfg);
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    std::fs::write(
        hoist.docker_config_dir().join("config.json"),
        format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, target.host()),
    )
    .unwrap();
    let run = hoist
        .args(["promote", "src/app:1.0.0", "dst/app"])
        .run()
        .success();
    assert!(run.stdout.contains(&digest));
    assert_no_secret(&run);
    assert_holds_the_source_image(&source, &target, "app");

    // No entry at all: the registry's demand for a login is explained.
    let run = Hoist::new()
        .config(&cfg)
        .args(["promote", "src/app:1.0.0", "dst/app2"])
        .run()
        .code(1);
    assert!(
        run.stderr.contains("no credentials were found"),
        "{}",
        run.stderr
    );
    // Where hoist looked: docker's file, then the containers tools' files.
    let docker = position_of(&run.stderr, "docker/config.json");
    let podman = position_of(&run.stderr, ".config/containers/auth.json");
    assert!(docker < podman, "{}", run.stderr);
    assert_eq!(target.read_tags("app2"), Vec::<String>::new());
}

/// Where `file` is named in `text` (a message listing the login files).
fn position_of(text: &str, file: &str) -> usize {
    text.find(file)
        .unwrap_or_else(|| panic!("`{file}` not named in: {text}"))
}

/// podman, skopeo and buildah keep logins in `auth.json` (docker's format):
/// `$REGISTRY_AUTH_FILE`, else `$XDG_RUNTIME_DIR/containers/auth.json`.
/// Either is read when docker's `config.json` has nothing for the host; a
/// refusal names the file.
#[test]
fn podman_and_skopeo_logins_in_auth_json() {
    let (source, _) = source_with_image();
    let target = TestRegistry::builder().htpasswd(USER, PASSWORD).start();
    let cfg = config(&source, target.host(), "");
    let entry = |password: &str| {
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{password}"));
        format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, target.host())
    };
    let files = tempfile::tempdir().unwrap();
    let runtime = files.path().join("run");
    std::fs::create_dir_all(runtime.join("containers")).unwrap();
    std::fs::write(runtime.join("containers/auth.json"), entry(PASSWORD)).unwrap();
    let explicit = files.path().join("elsewhere.json");
    std::fs::write(&explicit, entry("not-the-password")).unwrap();

    Hoist::new()
        .config(&cfg)
        .env("XDG_RUNTIME_DIR", &runtime)
        .args(["promote", "src/app:1.0.0", "dst/app"])
        .run()
        .success();
    assert_holds_the_source_image(&source, &target, "app");

    // $REGISTRY_AUTH_FILE wins over the runtime directory: its wrong password is refused, by name.
    let run = Hoist::new()
        .config(&cfg)
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("REGISTRY_AUTH_FILE", &explicit)
        .args(["promote", "src/app:1.0.0", "dst/app2"])
        .run()
        .code(1);
    let refused = format!(
        "the registry refused the credentials from the `auths` entry of {}",
        explicit.display()
    );
    assert!(run.stderr.contains(&refused), "{}", run.stderr);
    assert!(!run.stderr.contains("not-the-password"), "{}", run.stderr);
    assert_eq!(target.read_tags("app2"), Vec::<String>::new());
}

/// `podman login` as root without `XDG_RUNTIME_DIR` writes
/// `/run/containers/0/auth.json`; logins may also live under
/// `$XDG_CONFIG_HOME/containers/auth.json` (containers-auth.json(5)). The
/// second is read; both are named when nothing is found.
#[test]
fn auth_json_under_xdg_config_home_and_run_containers_uid() {
    let (source, _) = source_with_image();
    let target = TestRegistry::builder().htpasswd(USER, PASSWORD).start();
    let cfg = config(&source, target.host(), "");
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    let files = tempfile::tempdir().unwrap();
    let xdg = files.path().join("xdg");
    std::fs::create_dir_all(xdg.join("containers")).unwrap();
    std::fs::write(
        xdg.join("containers/auth.json"),
        format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, target.host()),
    )
    .unwrap();
    Hoist::new()
        .config(&cfg)
        .env("XDG_CONFIG_HOME", &xdg)
        .args(["promote", "src/app:1.0.0", "dst/app"])
        .run()
        .success();
    assert_holds_the_source_image(&source, &target, "app");

    let empty = files.path().join("empty");
    let uid = std::fs::metadata("/proc/self").map(|m| {
        use std::os::unix::fs::MetadataExt;
        m.uid()
    });
    let run = Hoist::new()
        .config(&cfg)
        .env_remove("XDG_RUNTIME_DIR")
        .env("XDG_CONFIG_HOME", &empty)
        .args(["promote", "src/app:1.0.0", "dst/app2"])
        .run()
        .code(1);
    let runtime = position_of(
        &run.stderr,
        &format!("/run/containers/{}/auth.json", uid.unwrap()),
    );
    let config_home = position_of(
        &run.stderr,
        &format!("{}/containers/auth.json", empty.display()),
    );
    assert!(runtime < config_home, "{}", run.stderr);
}

#[test]
fn docker_credential_helper() {
    let (source, digest) = source_with_image();
    let target = TestRegistry::builder().htpasswd(USER, PASSWORD).start();
    let cfg = config(&source, target.host(), "");

    let hoist = Hoist::new().config(&cfg);
    let helpers = tempfile::tempdir().unwrap();
    let bin = helpers.path().to_path_buf();
    let helper = bin.join("docker-credential-test");
    // The helper checks it is asked for the right server, as docker's helpers do.
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 3\nread server\n[ \"$server\" = \"{host}\" ] || {{ echo \"credentials not found in native keychain\"; exit 1; }}\nprintf '{{\"ServerURL\":\"%s\",\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}' \"$server\"\n",
            host = target.host()
        ),
    )
    .unwrap();
    std::fs::write(
        bin.join("docker-credential-broken"),
        "#!/bin/sh\necho 'keychain locked' >&2\nexit 5\n",
    )
    .unwrap();
    for script in ["docker-credential-test", "docker-credential-broken"] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(bin.join(script), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    std::fs::write(
        hoist.docker_config_dir().join("config.json"),
        format!(r#"{{"credHelpers":{{"{}":"test"}}}}"#, target.host()),
    )
    .unwrap();
    let run = hoist
        .env("PATH", &path)
        .args(["promote", "src/app:1.0.0", "dst/app"])
        .run()
        .success();
    assert!(run.stdout.contains(&digest));
    assert_no_secret(&run);

    // A helper that fails is an error, not a silent fall back to anonymous.
    let hoist = Hoist::new().config(&cfg);
    std::fs::write(
        hoist.docker_config_dir().join("config.json"),
        format!(r#"{{"credHelpers":{{"{}":"broken"}}}}"#, target.host()),
    )
    .unwrap();
    let run = hoist
        .env("PATH", &path)
        .args(["promote", "src/app:1.0.0", "dst/app2"])
        .run()
        .code(1);
    assert!(
        run.stderr.contains("docker-credential-broken") && run.stderr.contains("keychain locked"),
        "{}",
        run.stderr
    );
}

/// Every file a run left in its directory (plans, reports), as text.
fn files_of(run: &crate::support::hoist::Run) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(run.dir()).expect("the run's directory") {
        let path = entry.expect("an entry").path();
        if path.is_file() {
            text.push_str(&String::from_utf8_lossy(
                &std::fs::read(&path).unwrap_or_default(),
            ));
        }
    }
    text
}

#[test]
fn no_secret_in_any_output_plan_report_or_error() {
    let (source, _) = source_with_image();
    let basic = TestRegistry::builder().htpasswd(USER, PASSWORD).start();
    let token = TestRegistry::builder().token_auth(USER, PASSWORD).start();
    let rules = format!(
        "[registries.src]\nurl = \"{}\"\n\n\
         [registries.basic]\nurl = \"{}\"\nusername_env = \"B_USER\"\npassword_env = \"B_PASS\"\n\n\
         [registries.token]\nurl = \"{}\"\nusername_env = \"B_USER\"\npassword_env = \"B_PASS\"\n\n\
         [[promotion]]\nname = \"all\"\nfrom = \"src\"\nto = [\"basic\", \"token\"]\nrepositories = [\"app\"]\n",
        source.host(),
        basic.host(),
        token.host()
    );
    let hoist = |password: &str| {
        Hoist::new()
            .config(&rules)
            .env("B_USER", USER)
            .env("B_PASS", password)
    };
    let mut runs = vec![
        hoist(PASSWORD)
            .args(["plan", "--out", "plan.json"])
            .run()
            .success(),
        hoist(PASSWORD).args(["apply", "--dry-run"]).run().success(),
        hoist(PASSWORD)
            .args(["apply", "--report", "report.json"])
            .run()
            .success(),
        hoist(PASSWORD).args(["verify"]).run().success(),
        hoist(PASSWORD)
            .args([
                "promote",
                "src/app:1.0.0",
                "basic/other/app",
                "--report",
                "r.json",
            ])
            .run()
            .success(),
        // A refused password: the error names the registry, not the secret.
        hoist("wrong-but-secret-too").args(["plan"]).run(),
    ];
    assert_ne!(runs.last().unwrap().code, 0, "a wrong password fails");
    // A ready bearer token from the environment.
    let issued = token.token_server().expect("token server").issued();
    assert!(!issued.is_empty(), "tokens were issued");
    let bearer = issued.last().unwrap().clone();
    runs.push(
        Hoist::new()
            .config(&format!(
                "{rules}\n[registries.tokenenv]\nurl = \"{}\"\ntoken_env = \"B_TOKEN\"\n",
                token.host()
            ))
            .env("B_USER", USER)
            .env("B_PASS", PASSWORD)
            .env("B_TOKEN", &bearer)
            .args([
                "promote",
                "src/app:1.0.0",
                "tokenenv/elsewhere/app",
                "--report",
                "r.json",
            ])
            .run(),
    );
    let with_token = runs.last().unwrap();
    assert_ne!(
        with_token.code, 2,
        "a valid configuration: {}",
        with_token.stderr
    );
    let issued = token.token_server().expect("token server").issued();
    let secrets: Vec<String> = [
        PASSWORD.to_string(),
        "wrong-but-secret-too".to_string(),
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}")),
    ]
    .into_iter()
    .chain(issued)
    .collect();
    for run in runs.drain(..) {
        let everything = format!("{}\n{}\n{}", run.stdout, run.stderr, files_of(&run));
        for secret in &secrets {
            assert!(
                !everything.contains(secret.as_str()),
                "a secret leaked into the output or files of a run:\n{everything}"
            );
        }
    }
}
