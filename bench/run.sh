#!/usr/bin/env bash
# hoist against skopeo sync, side by side, on registries over TLS on loopback.
#
#   bench/run.sh                      # every corpus, 3 runs per tool; writes bench/RESULTS.md
#   bench/run.sh --quick --runs 1     # tiny corpora, debug build: checks the benchmark works (CI)
#   bench/run.sh --corpus fleet --corpus warm
#   bench/run.sh --corpus wan --runs 1 --hoist-runs 5 --wan-rtt-ms 80 --wan-mbit 200 [--wan-storage disk]
#                                     # registries across a WAN (src/bin/hoist-wan)
#
# Installs docker-registry, skopeo, openssl, curl and GNU time when missing
# (apt-get), builds hoist in release mode, then runs bench/bench.py.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
for pair in docker-registry:docker-registry skopeo:skopeo openssl:openssl curl:curl \
  /usr/bin/time:time python3:python3; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
if ((${#need[@]})); then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
# Where cargo builds (CARGO_TARGET_DIR, as cargo reads it).
target="${CARGO_TARGET_DIR:-target}"
quick_only=0
for arg in "$@"; do [ "$arg" = --quick ] && quick_only=1; done
if [ "$quick_only" = 1 ]; then
  # A smoke run checks the benchmark, not speed: the debug build the tests
  # already made will do.
  cargo build --locked --quiet --bins
  export HOIST_BENCH_BIN_DIR="$target/debug"
else
  cargo build --release --locked --quiet --bins
  export HOIST_BENCH_BIN_DIR="$target/release"
fi
# Seeded source registries are kept under target/ and reused: seeding is
# deterministic, and every run checks its target against the source anyway.
args=(--cache "$target/bench-cache" "$@")
quick=0 partial=0 only_wan=1 previous=""
for arg in "$@"; do
  case $arg in
    --quick) quick=1 ;;
    --corpus) partial=1 ;;
    --corpus=*) partial=1 && [ "${arg#--corpus=}" = wan ] || only_wan=0 ;;
  esac
  if [ "$previous" = --corpus ] && [ "$arg" != wan ]; then only_wan=0; fi
  previous=$arg
done
# A full run records its tables. So does a run of only the WAN corpus: its
# rows have their own section per round trip and link rate. A quick or
# other partial run only prints them.
if [ "$quick" = 0 ] && { [ "$partial" = 0 ] || [ "$only_wan" = 1 ]; }; then
  args+=(--results bench/RESULTS.md)
fi
exec python3 bench/bench.py "${args[@]}"
