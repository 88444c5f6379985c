"""The WAN corpus: every registry behind its own `hoist-wan` proxy.

A fleet (repositories x tags, 4 layers of which 2 are shared) is copied
cold, checked warm, and promoted inside one registry, by hoist and by skopeo,
with each registry across a link of `--wan-rtt-ms` round trip and
`--wan-mbit` per direction (src/bin/hoist-wan). Beside each time is the
**floor** of that work on that link (see `floor` and bench/RESULTS.md) and
what the proxies saw: how busy each link was, how many requests were in
flight at once.
"""

import json
import math
import os
import statistics
import subprocess
import sys
from pathlib import Path

MIB = 1024 * 1024

# A promotion of staging/* to prod/* within one registry (here and in
# bench.py's loopback same-registry corpus).
SAME_RULE = 'repositories = ["staging/**"]\ntarget = "prod/{name}"'
ACCEPT = ", ".join([
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])

# Round trips before any byte of a blob reaches the client and after the
# last one has left it, that no concurrency can overlap (cold copy):
# TCP and TLS 1.3 handshakes with the source (2), the `/v2/` ping that
# learns the auth scheme (1), the catalog (1), the tag list (1), the
# manifest GET that names the blobs (1), the blob GET (1: the request's
# half trip out, the first byte's half trip back); then the last byte's half
# trip to the target and the 201 of its PUT back (1), and the manifest PUT
# that can only follow its blobs (1). The target's own handshakes, ping, tag
# list and upload POST overlap the source's chain.
COLD_CHAIN = 9
# Request-bound runs (warm, same-registry): the TCP and TLS handshakes (2)
# and the ping and catalog, which nothing can run beside (2); every other
# request runs `concurrency` at a time, one round trip per round. And never
# fewer rounds than the longest chain of requests that each need the one
# before: handshakes (2), ping, catalog, tag list, then for warm the tag's
# HEAD (6), for same-registry the manifest GET, the blob mount and the
# manifest PUT (8).
REQUEST_CHAIN = 4
SERIAL_REQUESTS = 2
DEPENDENT_CHAIN = {"warm": 6, "same-registry": 8}


def log(message):
    print(message, file=sys.stderr, flush=True)


class WanProxy:
    """A `hoist-wan` in front of one registry, with its counters file."""

    def __init__(self, binary, registry, rtt_ms, mbit, stats_path):
        self.stats_path = stats_path
        self.proc = subprocess.Popen(
            [str(binary), "--listen", "127.0.0.1:0", "--upstream", registry.host,
             "--rtt-ms", str(rtt_ms), "--mbit", str(mbit), "--stats", str(stats_path)],
            stdout=subprocess.PIPE, text=True)
        self.host = self.proc.stdout.readline().strip()
        if not self.host:
            self.proc.kill()
            raise RuntimeError(f"hoist-wan in front of {registry.host} did not start")

    def cpu_seconds(self):
        """User + system CPU the proxy has used so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        """Stops the proxy (SIGTERM writes the counters) and returns them,
        with the CPU it used (`cpu_s`)."""
        cpu = self.cpu_seconds()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        stats = json.loads(self.stats_path.read_text())
        stats["cpu_s"] = cpu
        return stats


class Far:
    """A registry as the tools reach it, through its proxy. The benchmark's
    own reads (snapshot, access log, blob sizes) go to the registry itself."""

    def __init__(self, registry, host):
        self._registry = registry
        self.host = host

    def __getattr__(self, name):
        return getattr(self._registry, name)


def unique_bytes(registry, expected):
    """Bytes a copy of `expected` must move: each distinct blob (config and
    layers) once, and each tag's manifest."""
    blobs, manifests = {}, 0
    conn = registry.connection()
    for key in sorted(expected):
        repo, tag = key.rsplit(":", 1)
        _, body = registry.request("GET", f"/v2/{repo}/manifests/{tag}", conn,
                                   {"Accept": ACCEPT})
        manifests += len(body)
        manifest = json.loads(body)
        for d in [manifest["config"], *manifest["layers"]]:
            blobs[d["digest"]] = d["size"]
    conn.close()
    return sum(blobs.values()) + manifests, len(blobs)


def run_corpus(bench):
    """Cold, warm and same-registry, each registry behind a proxy."""
    a, s = bench.args, bench.args.scale
    bench.wan_info = getattr(bench, "wan_info", {})
    setting = f"{a.wan_rtt_ms:g} ms, {a.wan_mbit:g} Mbit/s"
    # The source's storage is the seeded one (read only: the page cache
    # serves it); the targets' in memory unless --wan-storage disk.
    memory = a.wan_storage == "memory"
    source = bench.seeded("wan-staging")
    bench.seed(source, "wan/app", s["wan_repos"], s["fleet_tags"], 4, 2, s["layer"])
    expected = source.snapshot()
    repos = sorted({key.split(":")[0] for key in expected})
    moved, blobs = unique_bytes(source, expected)
    rule = 'repositories = ["wan/**"]'
    names = {kind: f"wan {kind} ({setting})" for kind in ("cold", "warm", "same-registry")}

    log(f"{names['cold']}: {len(expected)} tags, {blobs} blobs, {moved / MIB:.1f} MiB to move")
    bench.wan_info[names["cold"]] = dict(kind="data", bytes=moved)
    side_by_side(bench, names["cold"], source, expected, rule, repos, "wan",
                 lambda: bench.registry("wan-target", memory=memory))

    log(f"{names['warm']}: target already complete")
    bench.wan_info[names["warm"]] = dict(kind="requests", chain="warm")
    side_by_side(bench, names["warm"], source, expected, rule, repos, "wan",
                 lambda: bench.copy_storage(source, "wan-warm-target", memory=memory))

    seeded, same_expected, same_repos = bench.seeded_same("wan-same-seed", s["wan_repos"])
    log(f"{names['same-registry']}: {len(same_expected) // 2} tags, staging/* -> prod/* in one registry")
    bench.wan_info[names["same-registry"]] = dict(kind="requests", chain="same-registry")
    side_by_side(bench, names["same-registry"], None, same_expected, SAME_RULE, same_repos, "prod",
                 lambda: bench.copy_storage(seeded, "wan-same", memory=memory))

    # Their own table: moved out of the loopback corpora's.
    bench.wan_results = getattr(bench, "wan_results", {})
    for name in names.values():
        bench.wan_results[name] = bench.results.pop(name, [])


def side_by_side(bench, corpus, source, expected, rule, repos, namespace, target):
    """hoist and skopeo, alternating, each run into a fresh target, with a
    fresh proxy per registry per run (so its counters are that run's)."""
    a = bench.args

    def once(tool):
        def go():
            t = target()
            s = t if source is None else source
            n = len(bench.results.get(corpus, []))
            near = [s] if s is t else [s, t]
            proxies = [WanProxy(bench.bin / "hoist-wan", r, a.wan_rtt_ms, a.wan_mbit,
                                bench.work / f"wan-{tool}-{n}-{i}.json")
                       for i, r in enumerate(near)]
            far = [Far(r, p.host) for r, p in zip(near, proxies)]
            far_s, far_t = far[0], far[-1]
            if tool == "hoist":
                run_tool = lambda out: bench.run_hoist(out, far_s, far_t, rule)
            else:
                run_tool = lambda out: bench.run_skopeo(out, far_s, far_t, repos, namespace)
            try:
                result = bench.measure(corpus, tool, far_s, far_t, expected, run_tool)
            finally:
                stats = [p.stop() for p in proxies]
            result.wan = dict(source=stats[0], target=stats[-1])
            bench.drop(t)
        return go

    bench.alternate([once("hoist"), once("skopeo")])


def busiest_registry(traffic):
    """Requests the busier registry got: the source's or the target's."""
    return max(sum(traffic.source_kinds.values()), sum(traffic.target_kinds.values()))


def floor(bench, corpus, hoist_runs):
    """(seconds, how it was derived) for `corpus` on its link."""
    a = bench.args
    rtt = a.wan_rtt_ms / 1000
    rate = a.wan_mbit * 1e6 / 8
    concurrency = a.hoist_jobs or 16
    requests = int(statistics.median(busiest_registry(r.traffic) for r in hoist_runs))
    info = bench.wan_info[corpus]
    parallel = REQUEST_CHAIN + math.ceil(max(0, requests - SERIAL_REQUESTS) / concurrency)
    chain = DEPENDENT_CHAIN.get(info.get("chain"), 0)
    rounds = max(parallel, chain)
    request_bound = rounds * rtt
    if info["kind"] == "data":
        link = info["bytes"] / rate
        seconds = link + COLD_CHAIN * rtt
        how = (f"{info['bytes'] / MIB:.1f} MiB / {a.wan_mbit:g} Mbit/s = {link:.2f} s, "
               f"+ {COLD_CHAIN} round trips = {seconds:.2f} s (hoist's {requests} requests "
               f"to the busier registry, {concurrency} at a time, would need {request_bound:.2f} s)")
        return seconds, how
    how = (f"max({REQUEST_CHAIN} round trips + ceil(({requests} requests to the busier registry - "
           f"{SERIAL_REQUESTS}) / {concurrency} at a time), a chain of {chain}) = {rounds} round trips "
           f"= {request_bound:.2f} s")
    return request_bound, how


def cpu_floor(result):
    """The run's CPU (the tool's, the registries' and the proxies') spread
    over every core: no run doing that work on this machine is shorter."""
    proxies = result.wan["source"]["cpu_s"]
    if result.wan["target"] is not result.wan["source"]:
        proxies += result.wan["target"]["cpu_s"]
    total = result.traffic.tool_cpu + result.traffic.registry_cpu + proxies
    return total / os.cpu_count()


def link_use(result):
    """Share of the run's wall time the source's download link and the
    target's upload link carried bytes."""
    down = result.wan["source"]["down"]["busy_s"] / result.wall
    up = result.wan["target"]["up"]["busy_s"] / result.wall
    return f"{down:.0%} / {up:.0%}"


def in_flight(result):
    """Requests awaiting an answer: mean over the run and peak, per registry."""
    def one(stats):
        waiting = stats["waiting"]
        mean = waiting["mean"] * waiting["span_s"] / result.wall
        return f"{mean:.1f}/{waiting['peak']}"
    if result.wan["source"] is result.wan["target"]:
        return one(result.wan["source"])
    return f"{one(result.wan['source'])} · {one(result.wan['target'])}"


HEADER = ["corpus", "tool", "median s", "floor s", "x floor", "hoist/skopeo", "peak RSS MiB",
          "requests", "connections (source · target)", "uploaded MiB", "link busy (source down / target up)",
          "in flight mean/peak (source · target)", "machine CPU busy", "CPU floor s",
          "x max(floor, CPU floor)", "correct"]


def summary(bench):
    """Rows, floor notes and verdicts of the WAN corpora."""
    rows, notes, verdicts = [], [], []
    if getattr(bench, "wan_results", None):
        where = {"memory": "in memory (tmpfs)", "disk": "on disk"}[bench.args.wan_storage]
        notes.append(f"- The target registries' storage: {where} (`--wan-storage`).")
    for corpus, results in getattr(bench, "wan_results", {}).items():
        by_tool = {}
        for r in results:
            by_tool.setdefault(r.tool, []).append(r)
        if "hoist" not in by_tool:
            continue
        seconds, how = floor(bench, corpus, by_tool["hoist"])
        notes.append(f"- {corpus}: floor = {how}.")
        medians = {tool: statistics.median(r.wall for r in rs) for tool, rs in by_tool.items()}
        for tool, rs in by_tool.items():
            ratio = ""
            if tool == "hoist" and medians.get("skopeo"):
                ratio = f"{medians['hoist'] / medians['skopeo']:.3f}"
            middle = sorted(rs, key=lambda r: r.wall)[len(rs) // 2]
            connections = str(middle.wan["source"]["connections"]["total"])
            if middle.wan["target"] is not middle.wan["source"]:
                connections += f" · {middle.wan['target']['connections']['total']}"
            rows.append([
                corpus, tool, f"{medians[tool]:.2f}", f"{seconds:.2f}",
                f"{medians[tool] / seconds:.2f}", ratio,
                f"{max(r.rss_kib for r in rs) / 1024:.1f}",
                str(int(statistics.median(r.traffic.requests for r in rs))),
                connections,
                f"{statistics.median(r.traffic.uploaded for r in rs) / MIB:.1f}",
                link_use(middle), in_flight(middle),
                f"{middle.traffic.machine_busy:.0%}", f"{cpu_floor(middle):.2f}",
                f"{medians[tool] / max(seconds, cpu_floor(middle)):.2f}",
                f"{sum(r.ok for r in rs)}/{len(rs)}",
            ])
        limit = 1.3 if " cold " in corpus else 1.5
        times = medians["hoist"] / seconds
        verdicts.append((corpus, f"hoist <= {limit} x floor (issue 17)", times <= limit,
                         f"{times:.2f}"))
        for tool, rs in by_tool.items():
            bad = [r for r in rs if not r.ok]
            verdicts.append((corpus, f"{tool}: target correct after every run", not bad,
                             bad[0].problem if bad else f"{len(rs)}/{len(rs)}"))
    return rows, notes, verdicts
