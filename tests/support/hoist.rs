//! Runs the `hoist` binary the way a user does, isolated from the machine's
//! docker config, and asserts on what a user sees.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A `hoist` invocation being put together.
pub struct Hoist {
    command: Command,
    dir: tempfile::TempDir,
    description: String,
}

/// What a finished `hoist` run left behind.
pub struct Run {
    /// Exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    description: String,
    /// The scratch directory, kept until the run's results are dropped.
    dir: tempfile::TempDir,
}

impl Hoist {
    /// `hoist` with an empty docker config and no promotions file.
    pub fn new() -> Hoist {
        Hoist::binary(env!("CARGO_BIN_EXE_hoist"))
    }

    /// Any binary of this package, with the same isolation.
    pub fn binary(path: &str) -> Hoist {
        let dir = tempfile::tempdir().expect("temp dir for a hoist run");
        let docker_config = dir.path().join("docker");
        std::fs::create_dir_all(&docker_config).expect("create docker config dir");
        let mut command = Command::new(path);
        command
            .current_dir(dir.path())
            .env("DOCKER_CONFIG", &docker_config)
            // Nor podman's, skopeo's or buildah's logins.
            .env("HOME", dir.path())
            .env_remove("REGISTRY_AUTH_FILE")
            // A runtime directory of its own: unset, the containers tools'
            // logins would be read from the machine's /run/containers/$UID.
            .env("XDG_RUNTIME_DIR", dir.path().join("run"))
            .env_remove("XDG_CONFIG_HOME")
            .env("HOIST_PROGRESS", "never")
            .env_remove("HOIST_CONFIG")
            .env_remove("HOIST_JOBS")
            .env_remove("HOIST_RETRIES")
            .env_remove("HOIST_TIMEOUT_SECS")
            .env_remove("HOIST_PAGE_SIZE")
            .env_remove("HOIST_SHARD")
            .env_remove("HOIST_SHARD_COUNT")
            .env_remove("JOB_COMPLETION_INDEX")
            .env_remove("HOIST_RETRY_BASE_MS")
            // Nor the job summary of the CI running the tests.
            .env_remove("GITHUB_STEP_SUMMARY");
        Hoist {
            command,
            dir,
            description: Path::new(path)
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        }
    }

    /// A scratch directory that lives as long as this invocation.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Where docker's config.json goes for this run.
    pub fn docker_config_dir(&self) -> PathBuf {
        self.dir.path().join("docker")
    }

    /// Writes `promotions.toml` into the scratch directory and passes `-c`.
    pub fn config(mut self, text: &str) -> Hoist {
        let path = self.dir.path().join("promotions.toml");
        std::fs::write(&path, text).expect("write promotions.toml");
        self.command.arg("-c").arg(path);
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> Hoist
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        for arg in args {
            let arg = arg.as_ref();
            self.description.push(' ');
            self.description.push_str(&arg.to_string_lossy());
            self.command.arg(arg);
        }
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Hoist {
        self.command.env(key, value);
        self
    }

    /// Sets each `(name, value)` environment variable.
    pub fn envs(mut self, vars: &[(&str, &str)]) -> Hoist {
        for (key, value) in vars {
            self = self.env(key, value);
        }
        self
    }

    /// Removes an environment variable for this run.
    pub fn env_remove(mut self, key: &str) -> Hoist {
        self.command.env_remove(key);
        self
    }

    /// Runs it under `/usr/bin/time -f %M` and returns the run and its peak RSS in KiB.
    pub fn run_measured(mut self) -> (Run, u64) {
        let rss_file = self.dir.path().join("rss");
        let mut timed = Command::new("/usr/bin/time");
        timed
            .arg("-o")
            .arg(rss_file)
            .arg("-f")
            .arg("%M")
            .arg(self.command.get_program());
        timed.args(self.command.get_args());
        for (key, value) in self.command.get_envs() {
            match value {
                Some(value) => timed.env(key, value),
                None => timed.env_remove(key),
            };
        }
        timed.current_dir(self.dir.path());
        self.command = timed;
        let run = self.run();
        let text = std::fs::read_to_string(run.dir.path().join("rss"))
            .expect("GNU time output (apt-get install time)");
        let kib = text
            .lines()
            .last()
            .and_then(|l| l.trim().parse().ok())
            .expect("peak RSS in KiB");
        (run, kib)
    }

    /// Starts it in the background, stdout and stderr going to files in its
    /// scratch directory.
    pub fn spawn(mut self) -> Spawned {
        let out = std::fs::File::create(self.dir.path().join("stdout")).expect("stdout file");
        let err = std::fs::File::create(self.dir.path().join("stderr")).expect("stderr file");
        let child = self
            .command
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start hoist");
        Spawned {
            child,
            dir: self.dir,
        }
    }

    /// Runs it to completion.
    pub fn run(mut self) -> Run {
        let Output {
            status,
            stdout,
            stderr,
        } = self.command.output().expect("run hoist");
        Run {
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            description: self.description,
            dir: self.dir,
        }
    }
}

impl Run {
    /// Asserts exit status 0.
    pub fn success(self) -> Run {
        self.code(0)
    }

    /// Asserts the exit status.
    pub fn code(self, expected: i32) -> Run {
        assert_eq!(
            self.code, expected,
            "`{}` exited {} (expected {expected})\n--- stdout\n{}\n--- stderr\n{}",
            self.description, self.code, self.stdout, self.stderr
        );
        self
    }

    /// The run's scratch directory (its working directory).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A JSON file the run wrote into its scratch directory (`--report report.json`).
    pub fn json_file(&self, name: &str) -> serde_json::Value {
        let text = std::fs::read_to_string(self.dir.path().join(name))
            .unwrap_or_else(|e| panic!("{name} from `{}`: {e}", self.description));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"))
    }

    /// Stdout as lines.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

/// A `hoist` running in the background.
pub struct Spawned {
    /// The process.
    pub child: std::process::Child,
    dir: tempfile::TempDir,
}

impl Spawned {
    /// What it wrote on stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }

    /// What it wrote on stdout so far.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stdout")).unwrap_or_default()
    }

    /// A JSON file it wrote into its scratch directory.
    pub fn json_file(&self, name: &str) -> serde_json::Value {
        let text = std::fs::read_to_string(self.dir.path().join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}\n{}", self.stderr()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    /// Sends it a signal by name (`TERM`, `INT`).
    pub fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name}");
    }

    /// Waits for it to end; its exit code (`None` when killed by a signal).
    pub fn wait(&mut self) -> Option<i32> {
        self.child.wait().expect("wait for hoist").code()
    }
}
