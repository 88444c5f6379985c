#!/usr/bin/env python3
"""What one request costs the registry: the floor under every benchmark figure.

Starts one docker-registry over TLS (as bench.py does), sends each kind of
request a few hundred times from one keep-alive connection, and prints the
registry's CPU time (user + system, from /proc) per request. On a 2-core
machine a run of R requests cannot take less than R x (cost) / 2 seconds,
whatever the client does, because the registries need that CPU.

    python3 bench/registry_costs.py
"""

import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402


def main():
    work = Path(tempfile.mkdtemp(prefix="hoist-costs-"))
    tls = bench.Tls(work)
    registry = bench.Registry(work, "registry", tls)
    conn = registry.connection()

    def cost(label, once, n=300):
        cpu, start = registry.cpu_seconds(), time.monotonic()
        for i in range(n):
            once(i)
        cpu, wall = registry.cpu_seconds() - cpu, time.monotonic() - start
        print(f"| {label} | {1000 * cpu / n:.2f} | {1000 * wall / n:.2f} |", flush=True)

    def blob(size, i):
        data = os.urandom(size)
        return data, "sha256:" + hashlib.sha256(data).hexdigest()

    def upload(size, repository="a/up"):
        def once(i):
            data, digest = blob(size, i)
            response, _ = registry.request("POST", f"/v2/{repository}/blobs/uploads/", conn,
                                           {"Content-Length": "0"})
            location = response.getheader("Location").split(registry.host)[-1]
            conn.request("PUT", f"{location}&digest={digest}", body=data,
                         headers={"Content-Type": "application/octet-stream"})
            response = conn.getresponse()
            response.read()
            assert response.status == 201, response.status
        return once

    present, digest = blob(1024, 0)
    upload_one = upload(1024, "a/b")
    upload_one(0)
    response, _ = registry.request("POST", "/v2/a/b/blobs/uploads/", conn, {"Content-Length": "0"})
    location = response.getheader("Location").split(registry.host)[-1]
    conn.request("PUT", f"{location}&digest={digest}", body=present)
    conn.getresponse().read()

    print("| request | registry CPU ms | wall ms |")
    print("|---|---|---|")
    cost("GET /v2/ (keep-alive)", lambda i: registry.request("GET", "/v2/", conn))
    cost("HEAD blob, present", lambda i: registry.request("HEAD", f"/v2/a/b/blobs/{digest}", conn))
    cost("HEAD blob, absent (404)",
         lambda i: registry.request("HEAD", f"/v2/a/b/blobs/sha256:{i + 1:064x}", conn))
    cost("GET tags of a missing repository (404)",
         lambda i: registry.request("GET", f"/v2/none{i}/tags/list", conn))
    cost("POST mount, present (201)",
         lambda i: registry.request("POST", f"/v2/a/b/blobs/uploads/?mount={digest}&from=a/b",
                                    conn, {"Content-Length": "0"}))
    cost("POST upload into a new repository (202)",
         lambda i: registry.request("POST", f"/v2/new{i}/x/blobs/uploads/", conn,
                                    {"Content-Length": "0"}))
    cost("POST mount from itself into a new repository, absent (202)",
         lambda i: registry.request(
             "POST", f"/v2/self{i}/x/blobs/uploads/?mount=sha256:{i + 1:064x}&from=self{i}/x",
             conn, {"Content-Length": "0"}))
    cost("HEAD blob in a new repository, absent (404)",
         lambda i: registry.request("HEAD", f"/v2/head{i}/x/blobs/sha256:{i + 1:064x}", conn))
    cost("upload 1 KiB (POST + PUT)", upload(1024), 200)
    cost("upload 512 KiB (POST + PUT)", upload(512 * 1024), 100)
    cost("upload 4 MiB (POST + PUT)", upload(4 * 1024 * 1024), 30)

    def handshake(i):
        fresh = registry.connection()
        registry.request("GET", "/v2/", fresh)
        fresh.close()
    cost("new TLS connection + GET /v2/", handshake, 100)

    # HTTP/2 multiplexing does not make a request cheaper for the registry.
    urls = work / "urls"
    urls.write_text("".join(f'url = "https://{registry.host}/v2/a/b/blobs/sha256:{i:064x}"\n'
                            f'output = "/dev/null"\n' for i in range(1000)))
    for label, flags in (("1,000 HEADs, curl HTTP/1.1, 16 connections", ["--http1.1"]),
                         ("1,000 HEADs, curl HTTP/2, 16 streams", ["--http2"])):
        cpu, start = registry.cpu_seconds(), time.monotonic()
        subprocess.run(["curl", "-s", "-I", "--cacert", str(tls.ca), "--parallel",
                        "--parallel-max", "16", *flags, "-K", str(urls)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        cpu, wall = registry.cpu_seconds() - cpu, time.monotonic() - start
        # seconds per 1,000 requests = milliseconds per request
        print(f"| {label} | {cpu:.2f} | {wall:.2f} |")
    registry.stop()
    subprocess.run(["rm", "-rf", str(work)])


if __name__ == "__main__":
    main()
