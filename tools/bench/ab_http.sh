#!/usr/bin/env bash
# tools/bench/ab_http.sh OLD_BUILD NEW_BUILD [ROUNDS] [HTTP_LOAD_ARGS...] — A/B of two shoald
# builds on HTTP keep-alive, alternating within each round so a noisy machine disturbs both alike.
# For each build and round it prints responses/s at saturation (http_load defaults, or the
# arguments given; tracker on CPU 1, generator on CPU 0) and the CPU time every shoald process
# spent per response in µs, from `perf stat -e task-clock` over the measured run (CPU time per
# response changes far less with other jobs on the machine than the rate does).
# Loopback only; each shoald is stopped by its PID and its /dev/shm segments removed.
# Example: tools/bench/ab_http.sh build/bench-before build/bench 3 --numwant 30-200
set -euo pipefail
# perf (Debian linux-perf) is not among `make deps`: installed here on first use, as `make bench`
# installs opentracker.
command -v perf >/dev/null || { (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf; }
old=$1 new=$2 rounds=${3:-3}
shift $(( $# >= 3 ? 3 : $# ))
load_args=("$@")
gen=$new/http_load
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run() {  # run BUILD -> prints "rate cpu_us_per_response"
  local build=$1 port name pid pids out rate ms
  port=$((20000 + RANDOM % 20000)); name=shoal-abh-$$-$port
  printf 'shm_name = "%s";\nlog_level = "warn";\nudp: { listen = [ "127.0.0.1:%d" ]; };\nstats: { socket = ""; };\nhttp: { enabled = true; listen = [ "127.0.0.1:%d" ]; };\ntracker: { announce_interval = 1800; peer_ttl = 3600; };\n' \
    "$name" "$port" "$port" > "$tmp/c.conf"
  taskset -c 1 "$build/shoald" -c "$tmp/c.conf" 2>/dev/null & pid=$!
  sleep 0.8
  pids=$(echo $pid $(pgrep -P $pid) | tr ' ' ',')
  perf stat -x, -e task-clock -p "$pids" -o "$tmp/perf" -- sleep 5.5 &
  local perf_pid=$!
  sleep 0.2
  out=$(taskset -c 0 "$gen" --target 127.0.0.1:$port --duration 5 --warmup 0 "${load_args[@]}")
  wait $perf_pid || true
  rate=$(echo "$out" | grep -oE '^http_load: [0-9]+' | grep -oE '[0-9]+')
  ms=$(grep task-clock "$tmp/perf" | cut -d, -f1)
  kill -TERM $pid; wait $pid 2>/dev/null || true
  rm -f /dev/shm/$name-*
  awk -v r="$rate" -v ms="$ms" 'BEGIN { printf "%d %.2f\n", r, ms * 1000 / (r * 5) }'
}
for i in $(seq 1 "$rounds"); do
  for b in "$old" "$new"; do
    echo "round $i $b: $(run "$b")"
  done
done
