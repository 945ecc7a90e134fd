#!/usr/bin/env bash
# tools/run_fuzz.sh BUILD_DIR SECONDS TARGET... — runs each libFuzzer target of `make fuzz` for
# SECONDS on its seed corpus (tests/fuzz/corpus/TARGET, read only: new inputs go to a temporary
# directory), prints one line per target with the executions and executions per second, and
# exits 1 if any target found a crash, a leak, a timeout or an out-of-memory (the input is kept
# under build-fuzz/crashes/ and its path printed: add it to the seed corpus once fixed).
set -uo pipefail
build=$1 seconds=$2
shift 2
crashes=$build/crashes
export LSAN_OPTIONS="suppressions=$PWD/tests/fuzz/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
mkdir -p "$crashes"
failed=0
for t in "$@"; do
  work=$(mktemp -d)
  seeds=tests/fuzz/corpus/$t
  log=$work/log
  "$build/$t" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$crashes/$t-" "$work" "$seeds" > "$log" 2>&1
  rc=$?
  execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo 0)
  rate=$(grep -oE 'stat::average_exec_per_sec: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo 0)
  if [ $rc -ne 0 ]; then
    failed=1
    printf '%-22s FAILED (exit %d) after %s runs\n' "$t" $rc "$execs"
    grep -E 'ERROR|SUMMARY|Test unit written|==[0-9]+==' "$log" | head -20
  else
    printf '%-22s ok  %10s runs  %8s runs/s  %s s\n' "$t" "$execs" "$rate" "$seconds"
  fi
  rm -rf "$work"
done
exit $failed
