#!/usr/bin/env bash
# tools/run_fuzz.sh [-j JOBS] BUILD_DIR SECONDS TARGET... — runs each libFuzzer target of
# `make fuzz` for SECONDS on its seed corpus (tests/fuzz/corpus/TARGET, read only: new inputs go
# to a temporary directory), JOBS targets at a time (default 1; one core each), prints one line
# per target in the order given with the executions and executions per second, and exits 1 if
# any target found a crash, a leak, a timeout or an out-of-memory (the input is kept under
# build-fuzz/crashes/ and its path printed: add it to the seed corpus once fixed).
set -uo pipefail
jobs=1
if [ "${1:-}" = "-j" ]; then jobs=$2; shift 2; fi
build=$1 seconds=$2
shift 2
crashes=$build/crashes
export LSAN_OPTIONS="suppressions=$PWD/tests/fuzz/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
mkdir -p "$crashes"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# fuzz_one TARGET: runs it, writes its result line(s) to $out/TARGET.txt and exit status to $out/TARGET.rc.
fuzz_one() {
  local t=$1 work seeds log rc execs rate
  work=$(mktemp -d)
  seeds=tests/fuzz/corpus/$t
  log=$work/log
  "$build/$t" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$crashes/$t-" "$work" "$seeds" > "$log" 2>&1
  rc=$?
  execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo 0)
  rate=$(grep -oE 'stat::average_exec_per_sec: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo 0)
  {
    if [ $rc -ne 0 ]; then
      printf '%-22s FAILED (exit %d) after %s runs\n' "$t" $rc "$execs"
      grep -E 'ERROR|SUMMARY|Test unit written|==[0-9]+==' "$log" | head -20
    else
      printf '%-22s ok  %10s runs  %8s runs/s  %s s\n' "$t" "$execs" "$rate" "$seconds"
    fi
  } > "$out/$t.txt"
  echo $rc > "$out/$t.rc"
  rm -rf "$work"
}

# Start the targets, at most $jobs running; then print the results in the order given.
for t in "$@"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
  fuzz_one "$t" &
done
wait
failed=0
for t in "$@"; do
  cat "$out/$t.txt" 2>/dev/null || { echo "$t: no result"; failed=1; }
  [ "$(cat "$out/$t.rc" 2>/dev/null)" = 0 ] || failed=1
done
exit $failed
