//! hoist's own container image (issue 19): `scripts/image` builds it from
//! scratch and pushes it to a test registry; unpacked with skopeo and umoci,
//! its root filesystem runs `hoist --version` and `hoist check` under
//! `chroot` as the image's non-root user (containers cannot start in this
//! sandbox, a chroot can); then hoist promotes its own image to another
//! registry, byte for byte.

use std::path::Path;
use std::process::Command;

use crate::support::{Hoist, TestRegistry};

/// Where `chroot` is found; nothing else of the host's environment reaches the image.
const SYSTEM_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// Runs a command, panicking with its output when it fails; its stdout.
fn run(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Why the test cannot run here, if it cannot.
fn unavailable() -> Option<String> {
    for tool in ["buildah", "umoci", "skopeo", "chroot"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            return Some(format!(
                "{tool} is not installed (./scripts/test installs it with apt-get)"
            ));
        }
    }
    let root = run(Command::new("id").arg("-u")).trim() == "0";
    (!root).then(|| "chroot needs root".to_string())
}

#[test]
fn the_image_holds_what_hoist_needs_and_hoist_promotes_it() {
    if let Some(why) = unavailable() {
        eprintln!("SKIPPED the_image_holds_what_hoist_needs_and_hoist_promotes_it: {why}");
        return;
    }
    let (build, prod) = (TestRegistry::start(), TestRegistry::start());
    let image = format!("{}/tools/hoist:0.1.0", build.host());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/image");
    run(Command::new(script)
        .arg(&image)
        .env("HOIST_IMAGE_BINARY", env!("CARGO_BIN_EXE_hoist")));

    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let bundle = dir.path().join("bundle");
    run(Command::new("skopeo").args([
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        &format!("docker://{image}"),
        &format!("oci:{}:hoist", layout.display()),
    ]));
    let config = run(Command::new("skopeo").args([
        "inspect",
        "--config",
        &format!("oci:{}:hoist", layout.display()),
    ]));
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    let labels = &config["config"]["Labels"];
    for label in ["source", "version", "revision", "licenses"] {
        let key = format!("org.opencontainers.image.{label}");
        assert!(labels[&key].is_string(), "{key}: {config:#}");
    }
    assert_eq!(labels["org.opencontainers.image.version"], "0.1.0");
    assert_eq!(config["config"]["User"], "65532:65532");
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/usr/local/bin/hoist"])
    );
    run(Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:hoist", layout.display()))
        .arg(&bundle));
    let rootfs = bundle.join("rootfs");
    let in_image = |args: &[&str]| {
        run(Command::new("chroot")
            .arg("--userspec=65532:65532")
            .arg(&rootfs)
            .arg("/usr/local/bin/hoist")
            .args(args)
            .env_clear()
            .env("PATH", SYSTEM_PATH)
            .env("HOIST_PROGRESS", "never"))
    };
    assert!(in_image(&["--version"]).starts_with("hoist 0.1.0"));
    std::fs::write(
        rootfs.join("tmp/promotions.toml"),
        format!(
            "[registries.prod]\nurl = \"{}\"\n\n[[promotion]]\nname = \"tools\"\nfrom = \"prod\"\nto = \"prod\"\n\
             repositories = [\"tools/*\"]\ntarget = \"stable/{{name}}\"\n",
            prod.host()
        ),
    )
    .unwrap();
    let check = Command::new("chroot")
        .arg("--userspec=65532:65532")
        .arg(&rootfs)
        .args([
            "/usr/local/bin/hoist",
            "-c",
            "/tmp/promotions.toml",
            "check",
        ])
        .env_clear()
        .env("PATH", SYSTEM_PATH)
        .output()
        .unwrap();
    assert!(check.status.success(), "{check:?}");
    assert!(
        String::from_utf8_lossy(&check.stderr).contains("ok (1 registry, 1 rule"),
        "{check:?}"
    );

    // hoist promotes its own image, byte for byte.
    Hoist::new()
        .args(["promote", &image, &format!("{}/tools/hoist", prod.host())])
        .run()
        .success();
    let built = build.read_manifest_digest("tools/hoist", "0.1.0");
    assert!(built.is_some());
    assert_eq!(prod.read_manifest_digest("tools/hoist", "0.1.0"), built);
    assert!(Path::new(&rootfs.join("etc/ssl/certs/ca-certificates.crt")).is_file());
}
