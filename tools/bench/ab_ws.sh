#!/usr/bin/env bash
# tools/bench/ab_ws.sh OLD_BUILD NEW_BUILD [ROUNDS] [ws|wss] [ws_load options] — A/B of two shoald
# builds on WebTorrent over WebSocket (the bench's ws load: 64 connections, 5 offers per announce,
# every offer answered), alternating within each round so a noisy machine disturbs both alike.
# For each build and round it prints
#   ann/s   announces answered per second in ws_load's measured window
#   bad     errors + invalid messages + timeouts ws_load saw in the window (0 expected)
#   us/ann  CPU time of every shoald process (utime+stime, /proc/PID/stat) in that window per
#           announce answered: the figure a shared machine disturbs least
#   gen_us  the same for ws_load (its cpu_seconds; near shoald's figure, the generator may be the limit)
# shoald: 1 socket + 1 swarm worker on CPU 1, ws_load on CPU 0, the relay budget raised as the
# bench does (tools/bench/bench_ws.py), the test certificate of tools/make_test_cert.sh.
# Loopback only; each shoald is stopped by its PID and its /dev/shm segments removed.
# Example: make BUILD=build/bench OPT="-O3 -g" build/bench/shoald build/bench/ws_load
#          git worktree add /tmp/old <rev> && (cd /tmp/old && make BUILD=/tmp/old/b OPT="-O3 -g" /tmp/old/b/shoald)
#          tools/bench/ab_ws.sh /tmp/old/b build/bench 5 wss
set -euo pipefail
old=$1 new=$2 rounds=${3:-3} scheme=${4:-wss}
shift $(( $# < 4 ? $# : 4 ))
load=("$@")
gen=$new/ws_load
here=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$here/tools/make_test_cert.sh" "$tmp/cert" >/dev/null
cpu_of() {  # utime+stime (clock ticks) of pids
  local t=0 p
  for p in "$@"; do t=$((t + $(sed 's/.*) //' /proc/$p/stat | awk '{print $12+$13}'))); done
  echo $t
}
run() {  # run BUILD -> prints "ann/s us/ann"
  local build=$1 port wport name pid kids c0 c1 line rate ann
  port=$((20000 + RANDOM % 20000)); wport=$((port + 1)); name=shoal-abws-$$-$port
  cat > "$tmp/c.conf" <<EOF
shm_name = "$name";
socket_workers = 1;
swarm_workers = 1;
log_level = "warn";
stats: { socket = ""; };
udp: { listen = [ "127.0.0.1:$((port + 2))" ]; };
ws: { enabled = true; listen = [ "127.0.0.1:$port" ]; max_connections_per_source = 0; relay_bytes_per_second = 16777216; };
wss: { enabled = true; listen = [ "127.0.0.1:$wport" ]; };
https: { certificate = "$tmp/cert/cert.pem"; private_key = "$tmp/cert/key.pem"; };
EOF
  taskset -c 1 "$build/shoald" -c "$tmp/c.conf" 2>"$tmp/log" & pid=$!
  sleep 1
  kids=$(pgrep -P $pid | tr '\n' ' ')
  local url="ws://127.0.0.1:$port/announce"
  [ "$scheme" = wss ] && url="wss://127.0.0.1:$wport/announce"
  c0=0 c1=0 line=
  while read -r l; do
    case "$l" in
      *'"phase":"measuring"'*) c0=$(cpu_of $pid $kids) ;;
      *'"phase":"measured"'*) c1=$(cpu_of $pid $kids); line=$l ;;
    esac
  done < <(taskset -c 0 "$gen" --url "$url" --cacert "$tmp/cert/cert.pem" --warmup 2 --seconds 8 "${load[@]}")
  rate=$(echo "$line" | grep -oE '"announces_per_s":[0-9.]+' | cut -d: -f2)
  ann=$(echo "$line" | grep -oE '"responses":[0-9]+' | head -1 | cut -d: -f2)
  bad=$(echo "$line" | grep -oE '"(errors|invalid|timeouts)":[0-9]+' | head -3 | cut -d: -f2 | paste -sd+ | bc)
  kill -TERM $pid; wait $pid 2>/dev/null || true
  rm -f /dev/shm/$name-*
  gcpu=$(echo "$line" | grep -oE '"cpu_seconds":[0-9.e+-]+' | cut -d: -f2)
  awk -v r="$rate" -v a="$ann" -v c=$((c1 - c0)) -v g="${gcpu:-0}" -v hz="$(getconf CLK_TCK)" -v bad="$bad" \
    'BEGIN { printf "%8.0f %7.1f %7.1f %5d\n", r, (a > 0 ? c * 1e6 / hz / a : 0), (a > 0 ? g * 1e6 / a : 0), bad }'
}
printf '%-6s %-40s %8s %7s %7s %5s\n' round build ann/s us/ann gen_us bad
for r in $(seq 1 "$rounds"); do
  for b in "$old" "$new"; do printf '%-6s %-40s %s\n' "$r" "$b" "$(run "$b")"; done
done
