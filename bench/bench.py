#!/usr/bin/env python3
"""hoist against `skopeo sync`, side by side, on real registries over TLS.

Started by bench/run.sh (which builds hoist and installs what is missing).
Every corpus is seeded once into a docker-registry with a self-signed CA;
then each tool runs RUNS times, alternating, each run into a fresh target
registry. After every run the target is read back and must hold exactly the
expected tags at the expected digests; a run that is fast and wrong fails the
benchmark. Requests and uploaded blob bytes are counted by the registries
themselves (their access logs), so both tools are measured the same way;
hoist's own count (from its --report) is shown beside it.
"""

import argparse
import datetime
import http.client
import json
import os
import re
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

# bench/wan.py is imported from beside this script: no __pycache__ in the tree.
sys.dont_write_bytecode = True
import wan  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
# Release binaries; a smoke run (`--quick`) may point this at target/debug.
BIN = Path(os.environ.get("HOIST_BENCH_BIN_DIR", ROOT / "target/release"))
HOIST = BIN / "hoist"
SEED = BIN / "hoist-seed"
MIB = 1024 * 1024
ACCEPT = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])
ACCESS = re.compile(r'^\S+ - \S+ \[[^\]]*\] "(\w+) (\S+) HTTP/[\d.]+" (\d+) ')


def log(message):
    print(message, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Tls:
    """A self-signed CA and a server certificate for 127.0.0.1."""

    def __init__(self, work):
        self.dir = work / "certs"
        self.dir.mkdir()
        d = self.dir
        run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=hoist bench CA", "-keyout", d / "ca.key", "-out", d / "ca.crt"])
        run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
             "-keyout", d / "server.key", "-out", d / "server.csr"])
        (d / "ext.cnf").write_text("subjectAltName = IP:127.0.0.1\n")
        run(["openssl", "x509", "-req", "-in", d / "server.csr", "-CA", d / "ca.crt",
             "-CAkey", d / "ca.key", "-CAcreateserial", "-days", "2",
             "-extfile", d / "ext.cnf", "-out", d / "server.crt"])
        # skopeo's --cert-dir reads every *.crt as a CA: only the CA goes there.
        self.skopeo_dir = work / "skopeo-certs"
        self.skopeo_dir.mkdir()
        shutil.copy(d / "ca.crt", self.skopeo_dir / "ca.crt")
        self.ca = d / "ca.crt"
        self.context = ssl.create_default_context(cafile=str(self.ca))


def run(argv, **kwargs):
    subprocess.run([str(a) for a in argv], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, **kwargs)


class Registry:
    """A docker-registry process on a loopback port, over TLS."""

    def __init__(self, work, name, tls, storage=None):
        self.dir = work / name
        self.dir.mkdir(parents=True)
        self.storage = Path(storage) if storage else self.dir / "storage"
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.tls = tls
        config = self.dir / "config.yml"
        config.write_text(f"""version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: {self.storage}
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: {self.host}
  tls:
    certificate: {tls.dir / 'server.crt'}
    key: {tls.dir / 'server.key'}
""")
        self.log_path = self.dir / "log"
        self.log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen(["docker-registry", "serve", str(config)],
                                     stdout=self.log_file, stderr=subprocess.STDOUT)
        for _ in range(200):
            try:
                self.request("GET", "/v2/")
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"docker-registry on {self.host} did not start")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_file.close()

    def connection(self):
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=self.tls.context,
                                           timeout=60)

    def request(self, method, path, conn=None, headers=None):
        own = conn is None
        conn = conn or self.connection()
        try:
            conn.request(method, path, headers=headers or {})
            response = conn.getresponse()
            body = response.read()
            return response, body
        finally:
            if own:
                conn.close()

    def snapshot(self):
        """Every `repo:tag` in the registry and the digest it resolves to."""
        conn = self.connection()
        repos, path = [], "/v2/_catalog?n=1000"
        while path:
            response, body = self.request("GET", path, conn)
            repos += json.loads(body)["repositories"] or []
            path = next_link(response)
        tags = {}
        for repo in repos:
            path = f"/v2/{repo}/tags/list?n=1000"
            while path:
                response, body = self.request("GET", path, conn)
                names = json.loads(body).get("tags") or [] if response.status == 200 else []
                for tag in names:
                    head, _ = self.request("HEAD", f"/v2/{repo}/manifests/{tag}", conn,
                                           {"Accept": ACCEPT})
                    if head.status == 200:
                        tags[f"{repo}:{tag}"] = head.getheader("Docker-Content-Digest")
                path = next_link(response) if response.status == 200 else None
        conn.close()
        return tags

    def cpu_seconds(self):
        """User + system CPU the registry process has used so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log_position(self):
        self.log_file.flush()
        return self.log_path.stat().st_size

    def requests_since(self, position):
        """The access-log lines (method, path, status) written after `position`."""
        with open(self.log_path, "rb") as f:
            f.seek(position)
            lines = f.read().decode(errors="replace").splitlines()
        found = []
        for line in lines:
            m = ACCESS.match(line)
            if m:
                found.append((m.group(1), m.group(2), int(m.group(3))))
        return found

    def blob_size(self, digest):
        algorithm, hex_ = digest.split(":", 1)
        data = self.storage / "docker/registry/v2/blobs" / algorithm / hex_[:2] / hex_ / "data"
        return data.stat().st_size if data.exists() else 0


def next_link(response):
    link = response.getheader("Link")
    if not link:
        return None
    m = re.match(r"<([^>]+)>", link)
    return m.group(1) if m else None


class Traffic:
    """What the registries saw during one run."""

    def __init__(self):
        self.requests = 0
        self.blob_requests = 0
        self.uploaded = 0
        self.kinds = {}
        self.source_kinds = {}
        self.target_kinds = {}
        self.registry_cpu = 0.0
        self.tool_cpu = 0.0
        # Share of the machine's CPU time busy (any process) during the run.
        self.machine_busy = 0.0

    def add(self, registry, lines, uploads_into=True):
        side = self.target_kinds if uploads_into else self.source_kinds
        for method, path, status in lines:
            self.requests += 1
            kind = classify(method, path)
            self.kinds[kind] = self.kinds.get(kind, 0) + 1
            side[kind] = side.get(kind, 0) + 1
            if "/blobs/" in path:
                self.blob_requests += 1
            if (uploads_into and method == "PUT" and "/blobs/uploads/" in path
                    and status == 201):
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
                for digest in query.get("digest", []):
                    self.uploaded += registry.blob_size(digest)


def classify(method, path):
    if path.startswith("/v2/_catalog"):
        return "catalog"
    if path in ("/v2/", "/v2"):
        return "ping"
    if "/tags/list" in path:
        return "tags"
    if "/referrers/" in path:
        return "referrers"
    if "/manifests/" in path:
        return f"manifest {method}"
    if "/blobs/uploads/" in path:
        return "mount" if "mount=" in path and method == "POST" else f"upload {method}"
    if "/blobs/" in path:
        return f"blob {method}"
    return f"other {method}"


class Measured:
    def __init__(self, tool, wall, rss_kib, traffic, own_requests, ok, problem):
        self.tool, self.wall, self.rss_kib = tool, wall, rss_kib
        self.traffic, self.own_requests = traffic, own_requests
        self.ok, self.problem = ok, problem


def timed(argv, out_dir, env=None):
    """Runs argv under /usr/bin/time -v: (wall seconds, peak RSS KiB, exit code)."""
    time_file = out_dir / "time.txt"
    with open(out_dir / "stdout.txt", "wb") as stdout, open(out_dir / "stderr.txt", "wb") as stderr:
        start = time.monotonic()
        code = subprocess.call(["/usr/bin/time", "-v", "-o", str(time_file)] + [str(a) for a in argv],
                               stdout=stdout, stderr=stderr, env=env)
        wall = time.monotonic() - start
    rss = 0
    for line in time_file.read_text().splitlines():
        if "Maximum resident set size" in line:
            rss = int(line.rsplit(":", 1)[1])
    return wall, rss, code


def machine_cpu():
    """(busy, total) CPU time of the whole machine so far, in clock ticks."""
    fields = [int(f) for f in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def tool_cpu(time_file):
    """User + system seconds from a /usr/bin/time -v report."""
    total = 0.0
    for line in time_file.read_text().splitlines():
        if "User time (seconds)" in line or "System time (seconds)" in line:
            total += float(line.rsplit(":", 1)[1])
    return total


def compare(expected, actual):
    """None when equal, else a short description of the difference."""
    if expected == actual:
        return None
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    wrong = sorted(k for k in expected if k in actual and actual[k] != expected[k])
    parts = []
    for label, keys in (("missing", missing), ("unexpected", extra), ("wrong digest", wrong)):
        if keys:
            parts.append(f"{len(keys)} {label} (e.g. {keys[0]})")
    return ", ".join(parts)


class Bench:
    def __init__(self, args):
        self.args = args
        self.work = Path(tempfile.mkdtemp(prefix="hoist-bench-"))
        self.tls = Tls(self.work)
        self.registries = []
        self.counter = 0
        self.results = {}  # corpus -> list of Measured
        self.notes = {}  # corpus -> extra lines
        self.bin = BIN
        self.memory = None

    def close(self):
        for registry in self.registries:
            registry.stop()
        if not self.args.keep:
            shutil.rmtree(self.work, ignore_errors=True)
        if self.memory:
            shutil.rmtree(self.memory, ignore_errors=True)

    def storage_root(self, memory):
        """Where a new registry's storage goes: the work directory, or with
        `memory` a directory in memory (tmpfs: /dev/shm) when the machine
        has one."""
        if not memory:
            return self.work
        if self.memory is None:
            shm = Path("/dev/shm")
            writable = shm.is_dir() and os.access(shm, os.W_OK)
            self.memory = Path(tempfile.mkdtemp(prefix="hoist-bench-", dir=shm)) if writable else self.work
        return self.memory

    def registry(self, name, storage=None, memory=False):
        self.counter += 1
        if storage is None and memory:
            storage = self.storage_root(True) / f"storage-{self.counter:03}"
        registry = Registry(self.work, f"{self.counter:03}-{name}", self.tls, storage)
        self.registries.append(registry)
        return registry

    def drop(self, registry):
        registry.stop()
        self.registries.remove(registry)
        shutil.rmtree(registry.dir, ignore_errors=True)
        if registry.storage.name.startswith(("copy-", "storage-")):
            shutil.rmtree(registry.storage, ignore_errors=True)

    def seeded(self, name):
        """A registry for a corpus's source; with --cache, over a kept storage."""
        if not self.args.cache:
            return self.registry(name)
        scale = "quick" if self.args.quick else "full"
        return self.registry(name, storage=self.args.cache.resolve() / f"{scale}-{name}")

    def seed(self, registry, prefix, count, tags, layers, shared, layer_size, platforms=None):
        marker = registry.storage / ".seeded"
        if marker.exists():
            log(f"  reusing the seeded storage {registry.storage}")
            return
        config = self.work / f"seed-{registry.port}.toml"
        config.write_text(f'[registries.r]\nurl = "https://{registry.host}"\nca_file = "{self.tls.ca}"\n')
        argv = [SEED, "-c", config, "r", "--count", count, "--prefix", prefix,
                "--tags", ",".join(tags), "--layers", layers, "--shared", shared,
                "--layer-size", layer_size, "--jobs", 16]
        if platforms:
            argv += ["--platforms", ",".join(platforms)]
        start = time.monotonic()
        run(argv)
        if self.args.cache:
            marker.write_text("seeded by bench.py; content is deterministic\n")
        log(f"  seeded {count} x {len(tags)} under {prefix} in {time.monotonic() - start:.1f}s")

    def copy_storage(self, registry, name, memory=False):
        """A fresh registry over a copy of `registry`'s storage (with
        `memory`, in memory: see `storage_root`)."""
        target = self.storage_root(memory) / f"copy-{self.counter + 1:03}"
        shutil.copytree(registry.storage, target)
        return self.registry(name, storage=target)

    # -- the tools ------------------------------------------------------

    def hoist_config(self, source, target, rule, out):
        text = f"""[registries.staging]
url = "https://{source.host}"
ca_file = "{self.tls.ca}"

[registries.prod]
url = "https://{target.host}"
ca_file = "{self.tls.ca}"

[[promotion]]
name = "bench"
from = "staging"
to = "prod"
{rule}
"""
        path = out / "promotions.toml"
        path.write_text(text)
        return path

    def run_hoist(self, out, source, target, rule, command="apply"):
        config = self.hoist_config(source, target, rule, out)
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOIST_")}
        env["HOIST_PROGRESS"] = "never"
        jobs = ["--jobs", str(self.args.hoist_jobs)] if self.args.hoist_jobs else []
        if command == "apply":
            argv = [HOIST, "-c", config, *jobs, "apply", "--report", out / "report.json"]
        else:
            argv = [HOIST, "-c", config, *jobs, "plan", "--out", out / "plan.json"]
        wall, rss, code = timed(argv, out, env)
        own = None
        if command == "apply" and (out / "report.json").exists():
            own = json.loads((out / "report.json").read_text())["summary"]["requests"]
        else:
            m = re.search(r"\((\d+) requests\)", (out / "stderr.txt").read_text() +
                          (out / "stdout.txt").read_text())
            own = int(m.group(1)) if m else None
        return wall, rss, code, own

    def run_skopeo(self, out, source, target, repos, namespace, extra=()):
        spec = out / "source.yaml"
        lines = [f"{source.host}:", "  tls-verify: true", f"  cert-dir: {self.tls.skopeo_dir}",
                 "  images:"]
        lines += [f"    {repo}: []" for repo in repos]
        spec.write_text("\n".join(lines) + "\n")
        argv = ["skopeo", "sync", "--src", "yaml", "--dest", "docker", "--dest-cert-dir",
                self.tls.skopeo_dir, "--preserve-digests", *extra, spec, f"{target.host}/{namespace}"]
        wall, rss, code = timed(argv, out)
        return wall, rss, code, None

    # -- one measured run -----------------------------------------------

    def measure(self, corpus, tool, source, target, expected, go):
        """Runs `go(out_dir)`, then checks that `target` holds exactly `expected`."""
        out = self.work / "runs" / f"{corpus}-{tool}-{len(self.results.get(corpus, []))}"
        out.mkdir(parents=True)
        watched = [source] if source is target else [source, target]
        marks = [r.log_position() for r in watched]
        cpu = sum(r.cpu_seconds() for r in watched)
        machine = machine_cpu()
        wall, rss, code, own = go(out)
        traffic = Traffic()
        traffic.registry_cpu = sum(r.cpu_seconds() for r in watched) - cpu
        busy, total = (after - before for after, before in zip(machine_cpu(), machine))
        traffic.machine_busy = busy / total if total else 0.0
        traffic.tool_cpu = tool_cpu(out / "time.txt")
        for registry, mark in zip(watched, marks):
            traffic.add(registry, registry.requests_since(mark), uploads_into=registry is target)
        problem = None
        if code != 0:
            tail = (out / "stderr.txt").read_text(errors="replace").strip().splitlines()[-3:]
            problem = f"exit {code}: {' | '.join(tail)}"
        if expected is not None and problem is None:
            difference = compare(expected, target.snapshot())
            problem = f"target differs: {difference}" if difference else None
        result = Measured(tool, wall, rss, traffic, own, problem is None, problem)
        self.results.setdefault(corpus, []).append(result)
        status = "ok" if result.ok else f"FAILED: {problem}"
        log(f"  {tool:7} {wall:7.2f}s {rss / 1024:7.1f} MiB {traffic.requests:7} requests"
            f" {traffic.uploaded / MIB:8.1f} MiB up {traffic.tool_cpu:6.2f}s CPU {traffic.registry_cpu:6.2f}s registry CPU  {status}")
        if self.args.verbose:
            log("          " + ", ".join(f"{k} {v}" for k, v in sorted(traffic.kinds.items())))
        return result

    def alternate(self, runs):
        """Each (name, once) `runs` times, alternating, the first changing
        every round; then hoist's (always the first) more runs, up to
        --hoist-runs: across a WAN a hoist run takes seconds where skopeo's
        takes minutes, and one run of seconds on a shared machine says
        little."""
        if self.args.only_hoist:
            runs = runs[:1]
        for round_ in range(self.args.runs):
            for once in (runs if round_ % 2 == 0 else list(reversed(runs))):
                once()
        for _ in range(max(0, (getattr(self.args, "hoist_runs", None) or 0) - self.args.runs)):
            runs[0]()

    def side_by_side(self, corpus, source, expected, rule, repos, namespace,
                     skopeo_extra=(), target=None):
        """hoist apply and skopeo sync, each run into a fresh target."""
        target = target or (lambda: self.registry(f"{corpus}-target"))

        def once(tool):
            def go():
                t = target()
                s = t if source is None else source
                if tool == "hoist":
                    run_tool = lambda out: self.run_hoist(out, s, t, rule)
                else:
                    run_tool = lambda out: self.run_skopeo(out, s, t, repos, namespace, skopeo_extra)
                self.measure(corpus, tool, s, t, expected, run_tool)
                self.drop(t)
            return go

        self.alternate([once("hoist"), once("skopeo")])

    # -- corpora ---------------------------------------------------------

    def fleet(self):
        if not hasattr(self, "_fleet"):
            s = self.args.scale
            log("fleet: seeding")
            registry = self.seeded("fleet-staging")
            self.seed(registry, "fleet/app", s["fleet_repos"], s["fleet_tags"], 4, 2, s["layer"])
            self._fleet = (registry, registry.snapshot())
        return self._fleet

    def corpus_fleet(self):
        source, expected = self.fleet()
        log(f"fleet: {len(expected)} tags, cold")
        repos = sorted({key.split(":")[0] for key in expected})
        self.side_by_side("fleet", source, expected, 'repositories = ["fleet/**"]', repos, "fleet")

    def corpus_warm(self):
        source, expected = self.fleet()
        log(f"warm: {len(expected)} tags, target already complete")
        repos = sorted({key.split(":")[0] for key in expected})
        # The source's own storage has exactly the target's final content.
        warm = lambda: self.copy_storage(source, "warm-target")
        self.side_by_side("warm", source, expected, 'repositories = ["fleet/**"]', repos, "fleet",
                          target=warm)

    def seeded_same(self, name, repos):
        """A stopped registry seeded with `repos` staging/app repositories
        (storage copied for each run), the tags a staging/* -> prod/*
        promotion must leave in it, and the source repositories."""
        s = self.args.scale
        seeded = self.seeded(name)
        self.seed(seeded, "staging/app", repos, s["fleet_tags"], 4, 2, s["layer"])
        before = seeded.snapshot()
        seeded.stop()
        self.registries.remove(seeded)
        expected = dict(before)
        expected.update({k.replace("staging/", "prod/", 1): v for k, v in before.items()})
        return seeded, expected, sorted({key.split(":")[0] for key in before})

    def corpus_same(self):
        log("same-registry: seeding")
        seeded, expected, repos = self.seeded_same("same-seed", self.args.scale["fleet_repos"])
        log(f"same-registry: {len(expected) // 2} tags, staging/* -> prod/* in one registry")
        self.side_by_side("same-registry", None, expected, wan.SAME_RULE, repos, "prod",
                          target=lambda: self.copy_storage(seeded, "same"))

    def corpus_wan(self):
        wan.run_corpus(self)

    def corpus_multi(self):
        s = self.args.scale
        log("multi-arch: seeding")
        source = self.seeded("multi-staging")
        self.seed(source, "multi/app", s["multi_repos"], [f"1.{i}.0" for i in range(s["multi_tags"])], 2, 1, s["layer"],
                  platforms=["linux/amd64", "linux/arm64"])
        expected = source.snapshot()
        repos = sorted({key.split(":")[0] for key in expected})
        log(f"multi-arch: {len(expected)} tags, each an index of 2 platforms")
        self.side_by_side("multi-arch", source, expected, 'repositories = ["multi/**"]', repos,
                          "multi", skopeo_extra=["--all"])

    def corpus_big(self):
        s = self.args.scale
        log(f"big blob: seeding one {s['big'] // MIB} MiB layer")
        source = self.seeded("big-staging")
        self.seed(source, "big/blob", 1, ["1.0.0"], 1, 0, s["big"])
        expected = source.snapshot()
        _, manifest = source.request("GET", "/v2/big/blob-000/manifests/1.0.0",
                                     headers={"Accept": ACCEPT})
        layer = json.loads(manifest)["layers"][0]["digest"]

        def curl_once():
            t = self.registry("big-curl")
            self.measure("big blob", "curl", source, t, None,
                         lambda out: self.curl_pipe(out, source, t, "big/blob-000", layer))
            self.drop(t)

        def side(tool):
            def go():
                t = self.registry("big-target")
                if tool == "hoist":
                    run_tool = lambda out: self.run_hoist(out, source, t, 'repositories = ["big/**"]')
                else:
                    run_tool = lambda out: self.run_skopeo(out, source, t, ["big/blob-000"], "big")
                self.measure("big blob", tool, source, t, expected, run_tool)
                self.drop(t)
            return go

        runs = [side("hoist"), side("skopeo"), curl_once]
        self.alternate(runs)
        self.big_size = s["big"]

    def curl_pipe(self, out, source, target, repo, digest):
        """The floor: one `curl` GET piped into one `curl` PUT of the same blob."""
        response, _ = target.request("POST", f"/v2/{repo}/blobs/uploads/")
        location = response.getheader("Location")
        if location.startswith("/"):
            location = f"https://{target.host}{location}"
        separator = "&" if "?" in location else "?"
        script = (f"curl -fsS --cacert {self.tls.ca} https://{source.host}/v2/{repo}/blobs/{digest}"
                  f" | curl -fsS --cacert {self.tls.ca} -X PUT -H 'Content-Type: application/octet-stream'"
                  f" -T - '{location}{separator}digest={digest}'")
        return (*timed(["bash", "-o", "pipefail", "-c", script], out), None)

    def corpus_wide(self):
        s = self.args.scale
        log(f"wide catalog: seeding {s['wide_repos']} x {s['wide_tags']} tiny tags")
        source = self.seeded("wide-staging")
        tags = [f"1.{i}.0" for i in range(s["wide_tags"])]
        self.seed(source, "wide/app", s["wide_repos"], tags, 1, 0, 256)
        expected = source.snapshot()
        repos = sorted({key.split(":")[0] for key in expected})
        target = self.registry("wide-target")

        def hoist_once():
            outs = []

            def go(out):
                outs.append(out)
                return self.run_hoist(out, source, target, 'repositories = ["wide/**"]', "plan")

            result = self.measure("wide catalog", "hoist", source, target, {}, go)
            problem = result.ok and self.check_plan(outs[0] / "plan.json", expected)
            if problem:
                result.ok, result.problem = False, problem
                log(f"  FAILED: {problem}")

        def skopeo_once():
            self.measure("wide catalog", "skopeo", source, target, {},
                         lambda out: self.run_skopeo(out, source, target, repos, "wide",
                                                     ["--dry-run"]))

        self.alternate([hoist_once, skopeo_once])

    def check_plan(self, path, expected):
        plan = json.loads(path.read_text())
        planned = {f"{e['source']['repository']}:{e['source']['tag']}": e["source"]["digest"]
                   for e in plan["entries"] if e["action"] == "create"}
        same_target = all(e["target"]["repository"] == e["source"]["repository"]
                          and e["target"]["tag"] == e["source"]["tag"] for e in plan["entries"])
        difference = compare(expected, planned)
        if difference or not same_target or len(plan["entries"]) != len(expected):
            return f"the plan is wrong: {difference or 'targets differ'}"
        return None

    # -- the table ---------------------------------------------------------

    def summary(self):
        """Rows per corpus and tool, and each target: met or the gap."""
        rows, verdicts = [], []
        for corpus, results in self.results.items():
            by_tool = {}
            for r in results:
                by_tool.setdefault(r.tool, []).append(r)
            medians = {tool: statistics.median(r.wall for r in rs) for tool, rs in by_tool.items()}
            for tool, rs in by_tool.items():
                good = sum(r.ok for r in rs)
                ratio = ""
                if tool == "hoist" and "skopeo" in medians and medians["skopeo"] > 0:
                    ratio = f"{medians['hoist'] / medians['skopeo']:.3f}"
                own = [r.own_requests for r in rs if r.own_requests is not None]
                rows.append([
                    corpus, tool, f"{medians[tool]:.2f}", ratio,
                    f"{max(r.rss_kib for r in rs) / 1024:.1f}",
                    str(int(statistics.median(r.traffic.requests for r in rs))),
                    str(int(statistics.median(own))) if own else "",
                    str(int(statistics.median(r.traffic.blob_requests for r in rs))),
                    f"{statistics.median(r.traffic.uploaded for r in rs) / MIB:.1f}",
                    f"{statistics.median(r.traffic.tool_cpu for r in rs):.2f}",
                    f"{statistics.median(r.traffic.registry_cpu for r in rs):.2f}",
                    f"{good}/{len(rs)}",
                ])
            verdicts += self.verdicts(corpus, by_tool, medians)
        return rows, verdicts

    def verdicts(self, corpus, by_tool, medians):
        hoist = by_tool.get("hoist", [])
        if not hoist:
            return []
        ratio = medians["hoist"] / medians["skopeo"] if medians.get("skopeo") else None
        worst_rss = max(r.rss_kib for r in hoist) / 1024
        checks = []

        def check(label, ok, value):
            checks.append((corpus, label, ok, value))

        def check_ratio(label, limit):
            if ratio is not None:
                check(label, ratio <= limit, f"{ratio:.3f}")

        if corpus == "fleet":
            check_ratio("hoist <= 0.15 x skopeo", 0.15)
        elif corpus == "warm":
            check_ratio("hoist <= 0.03 x skopeo", 0.03)
            blobs = max(r.traffic.blob_requests for r in hoist)
            check("no blob requests", blobs == 0, str(blobs))
            tags = len(self.fleet()[1])
            pages = ("catalog", "tags", "ping")

            def beyond_pages(kinds):
                # Asking once whether the source has the referrers API (a
                # late signature travels through it) is a probe, like the
                # ping; a second referrers request is not.
                probes = max(0, kinds.get("referrers", 0) - 1)
                return probes + sum(v for k, v in kinds.items() if k not in pages + ("referrers",))

            def listing(kinds):
                return ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))

            traffic = hoist[0].traffic
            total = beyond_pages(traffic.kinds)
            check(f"<= 1 request per target tag ({tags}) + catalog/tag-list pages and API probes, in all",
                  total <= tags, f"{total} beyond pages")
            target = beyond_pages(traffic.target_kinds)
            check(f"target registry: <= 1 request per target tag ({tags}) + pages",
                  target <= tags, f"{target} ({listing(traffic.target_kinds)})")
            source = beyond_pages(traffic.source_kinds)
            check(f"source registry: <= 1 request per source tag ({tags}) + pages",
                  source <= tags, f"{source} ({listing(traffic.source_kinds)})")
        elif corpus == "same-registry":
            up = max(r.traffic.uploaded for r in hoist)
            check("zero blob bytes uploaded", up == 0, f"{up} bytes")
            check_ratio("hoist <= 0.1 x skopeo", 0.1)
        elif corpus == "big blob":
            curl = medians.get("curl")
            share = curl / medians["hoist"] if curl else 0
            size = self.big_size / MIB
            check(">= 70% of the throughput of curl GET piped to curl PUT", share >= 0.7,
                  f"{share:.0%} (hoist {size / medians['hoist']:.0f} MiB/s, curl {size / curl:.0f} MiB/s)")
            check("peak RSS <= 64 MiB", worst_rss <= 64, f"{worst_rss:.1f} MiB")
        elif corpus == "wide catalog":
            worst = max(r.wall for r in hoist)
            check("plan < 5 s", medians["hoist"] < 5, f"median {medians['hoist']:.2f} s, worst {worst:.2f} s")
            check("peak RSS < 200 MiB", worst_rss < 200, f"{worst_rss:.1f} MiB")
        elif corpus == "multi-arch":
            check_ratio("hoist <= 0.25 x skopeo --all", 0.25)
        for tool, rs in by_tool.items():
            bad = [r for r in rs if not r.ok]
            check(f"{tool}: target correct after every run", not bad,
                  bad[0].problem if bad else f"{len(rs)}/{len(rs)}")
        return checks


HEADER = ["corpus", "tool", "median s", "hoist/skopeo", "peak RSS MiB", "requests",
          "hoist's count", "blob requests", "uploaded MiB", "tool CPU s", "registries' CPU s",
          "correct"]

SCALES = {
    "full": dict(fleet_repos=40, fleet_tags=["1.0.0", "1.1.0", "1.2.0", "2.0.0", "2.1.0"],
                 layer=512 * 1024, multi_repos=10, multi_tags=3, big=1024 * MIB,
                 wide_repos=2000, wide_tags=10, wan_repos=20),
    "quick": dict(fleet_repos=4, fleet_tags=["1.0.0", "1.1.0"], layer=64 * 1024,
                  multi_repos=2, multi_tags=2, big=16 * MIB, wide_repos=40, wide_tags=3,
                  wan_repos=2),
}
CORPORA = ["fleet", "warm", "same", "multi", "big", "wide", "wan"]


def markdown(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


BEGIN, END = "<!-- bench.py: begin -->", "<!-- bench.py: end -->"
# One section per WAN setting (round trip, link rate).
WAN_BEGIN, WAN_END = "<!-- bench.py wan {}: begin -->", "<!-- bench.py wan {}: end -->"


def write_between_markers(path, generated, begin=BEGIN, end=END):
    """Replaces the generated part of `path`, keeping what was written around it."""
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    if begin not in text or end not in text:
        text += f"\n{begin}\n{end}\n"
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    path.write_text(f"{head}{begin}\n{generated}{end}{tail}")


def versions():
    def first_line(argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True).stdout.strip().splitlines()[0]
        except (OSError, IndexError):
            return "?"
    commit = first_line(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    return (f"hoist {commit}, {first_line(['skopeo', '--version'])}, "
            f"{first_line(['docker-registry', '--version'])}, "
            f"{os.cpu_count()} CPUs, {first_line(['uname', '-sr'])}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per tool and corpus")
    parser.add_argument("--hoist-runs", type=int,
                        help="hoist's runs per corpus, when more than --runs (the extra ones last)")
    parser.add_argument("--quick", action="store_true", help="tiny corpora: a smoke test")
    parser.add_argument("--corpus", action="append", choices=CORPORA,
                        help="only these corpora (repeatable)")
    parser.add_argument("--results", type=Path, help="write the table here (markdown)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--only-hoist", action="store_true",
                        help="skip the other tools (experiments; no ratios)")
    parser.add_argument("--verbose", action="store_true", help="requests by kind after each run")
    parser.add_argument("--hoist-jobs", type=int,
                        help="hoist's --jobs (default: hoist's own default), for experiments")
    parser.add_argument("--wan-rtt-ms", type=float, default=40,
                        help="wan corpus: round trip each registry's proxy adds (ms)")
    parser.add_argument("--wan-mbit", type=float, default=400,
                        help="wan corpus: link rate per registry and direction (Mbit/s)")
    parser.add_argument("--wan-storage", choices=["memory", "disk"], default="memory",
                        help="wan corpus: where the target registries keep their blobs; in memory "
                        "(tmpfs) their file-system work, on a real link another machine's, costs "
                        "this machine's CPU less")
    parser.add_argument("--cache", type=Path,
                        help="keep seeded source storages here and reuse them (seeding is deterministic)")
    args = parser.parse_args()
    args.scale = SCALES["quick" if args.quick else "full"]
    bench = Bench(args)
    try:
        for corpus in args.corpus or CORPORA:
            getattr(bench, f"corpus_{corpus}")()
    finally:
        bench.close()
    rows, verdicts = bench.summary()
    wan_rows, wan_notes, wan_verdicts = wan.summary(bench)
    verdict_header = ["corpus", "target", "met", "measured"]

    def verdict_rows(found):
        return [[c, label, "yes" if ok else "**no**", value] for c, label, ok, value in found]

    tables = []
    if rows:
        tables.append((BEGIN, END, f"{markdown(HEADER, rows)}\n\n"
                       f"{markdown(verdict_header, verdict_rows(verdicts))}\n"))
    if wan_rows:
        setting = f"{args.wan_rtt_ms:g} ms {args.wan_mbit:g} Mbit/s"
        tables.append((WAN_BEGIN.format(setting), WAN_END.format(setting), f"{markdown(wan.HEADER, wan_rows)}\n\n"
                       + "\n".join(wan_notes) + "\n\n"
                       f"{markdown(verdict_header, verdict_rows(wan_verdicts))}\n"))
    for _, _, text in tables:
        print(text)
    if args.results:
        shown = [a for a in sys.argv[1:] if a not in (str(args.results), "--results")]
        if args.cache:
            shown = [a for a in shown if a not in (str(args.cache), "--cache")]
        command = " ".join(["bench/run.sh", *shown])
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        for begin, end, text in tables:
            generated = f"Run on {stamp} with `{command}` ({versions()}).\n\n{text}"
            write_between_markers(args.results, generated, begin, end)
    everything = [*bench.results.values(), *getattr(bench, "wan_results", {}).values()]
    correct = all(r.ok for results in everything for r in results)
    return 0 if correct else 1


if __name__ == "__main__":
    sys.exit(main())
