#!/usr/bin/env bash
# tools/bench/ab_udp.sh OLD_BUILD NEW_BUILD [ROUNDS] [udp_load options] — A/B of two shoald builds on UDP (BEP 15),
# alternating within each round so a noisy machine disturbs both alike. For each build and round:
#   sat   responses/s at saturation (udp_load defaults; tracker on CPU 1, generator on CPU 0)
#   cpu   CPU time of every shoald process per response, µs, at a fixed moderate load
#         (2 sockets x 4 in flight), from /proc/PID/stat utime+stime
#         with the workers' context switches per 1,000 responses (/proc/PID/status) and their
#         CPU µs per response (utime+stime; steadier than the rate on a shared machine)
# udp_load options (e.g. --numwant 30-200 --torrents 10000, the full-reply load) go to every run.
# Loopback only; each shoald is stopped by its PID and its /dev/shm segments removed.
# Example: make BUILD=build/bench OPT="-O3 -g" build/bench/shoald build/bench/udp_load
#          git worktree add /tmp/old <rev> && (cd /tmp/old && make BUILD=/tmp/old/b OPT="-O3 -g" /tmp/old/b/shoald)
#          tools/bench/ab_udp.sh /tmp/old/b build/bench 5
set -euo pipefail
old=$1 new=$2 rounds=${3:-3}
shift $(( $# < 3 ? $# : 3 ))
load=("$@")
gen=$new/udp_load
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ctx_of() {  # voluntary+involuntary context switches of pids
  local t=0 p
  for p in "$@"; do t=$((t + $(awk '/ctxt_switches/{s+=$2} END{print s}' /proc/$p/status))); done
  echo $t
}
cpu_of() {  # utime+stime (clock ticks) of a pid and its children
  local t=0 p
  for p in "$@"; do t=$((t + $(sed 's/.*) //' /proc/$p/stat | awk '{print $12+$13}'))); done
  echo $t
}
run() {  # run BUILD MODE -> prints one number
  local build=$1 mode=$2 port name pid kids t0 t1 rate
  port=$((20000 + RANDOM % 20000)); name=shoal-ab-$$-$port
  printf 'shm_name = "%s";\nlog_level = "warn";\nudp: { listen = [ "127.0.0.1:%d" ]; };\nstats: { socket = ""; };\n' \
    "$name" "$port" > "$tmp/c.conf"
  taskset -c 1 "$build/shoald" -c "$tmp/c.conf" 2>/dev/null & pid=$!
  sleep 0.7
  kids=$(pgrep -P $pid | tr '\n' ' ')
  if [ "$mode" = sat ]; then
    t0=$(ctx_of $kids); c0=$(cpu_of $kids)
    rate=$(taskset -c 0 "$gen" --target 127.0.0.1:$port --duration 4 --warmup 1 "${load[@]}" | grep -oE '^udp_load: [0-9]+' | grep -oE '[0-9]+')
    t1=$(ctx_of $kids); c1=$(cpu_of $kids)
    echo "$rate  cs/1k $(( (t1 - t0) * 1000 / (rate * 5) ))  us/resp $(( (c1 - c0) * (1000000 / $(getconf CLK_TCK)) * 100 / (rate * 5) ))" |
      sed -E 's/us\/resp ([0-9]*)([0-9]{2})$/us\/resp \1.\2/'
  else
    t0=$(cpu_of $pid $kids)
    rate=$(taskset -c 0 "$gen" --target 127.0.0.1:$port --duration 5 --warmup 0 --sockets 2 --inflight 4 "${load[@]}" | grep -oE '^udp_load: [0-9]+' | grep -oE '[0-9]+')
    t1=$(cpu_of $pid $kids)
    echo $(( (t1 - t0) * (1000000 / $(getconf CLK_TCK)) * 100 / (rate * 5) )) | sed -E 's/([0-9]*)([0-9]{2})$/\1.\2/'
  fi
  kill -TERM $pid; wait $pid 2>/dev/null || true
  rm -f /dev/shm/$name-*
}
printf '%-6s %-8s %-40s %s\n' round measure build value
for r in $(seq 1 "$rounds"); do
  for mode in sat cpu; do
    for b in "$old" "$new"; do printf '%-6s %-8s %-40s %s\n' "$r" "$mode" "$b" "$(run "$b" $mode)"; done
  done
done
