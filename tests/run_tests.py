#!/usr/bin/python3
"""Runs shoal's tests: DIR/unit_tests (GoogleTest), then every tests/integration/test_*.py.

usage: tests/run_tests.py --build DIR [--only unit|integration] [-k NAME] [--files F,...] [--timeout S]
                         [--jobs N]

Each integration file runs as its own subprocess under /usr/bin/python3 (it needs
python3-libtorrent) with a hard timeout; on timeout its whole process group (the test and the
shoald/aria2c it started) is killed. With --jobs N, N files run at a time (the slowest started
first; the few in ALONE below run by themselves afterwards). The
last line is exactly "N passed, M failed"; the exit
status is 1 if anything failed. Before it: the time of each part (unit tests, each integration
file, slowest first) and the slowest integration tests (SHOAL-TIME lines of tests/lib/harness.py).
"""
import argparse
import concurrent.futures
import glob
import os
import re
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


def _wait(p, timeout):
    """Waits for Popen p like p.wait(timeout), reaping it with wait4 to learn the CPU time it and
    the descendants it reaped used. Returns (returncode, CPU seconds); TimeoutExpired on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            p.returncode = os.waitstatus_to_exitcode(status)
            return p.returncode, ru.ru_utime + ru.ru_stime
        if time.monotonic() > deadline:
            raise subprocess.TimeoutExpired(p.args, timeout)
        time.sleep(0.05)


def run_group(argv, env, timeout, log_path):
    """Runs argv in a new process group, output to log_path; kills the group on timeout.
    Returns (returncode or None on timeout, output text, seconds, CPU seconds of the process and
    the descendants it reaped: shoald's workers count, a daemonized shoald does not)."""
    t0 = time.monotonic()
    cpu = 0.0
    with open(log_path, "wb") as log:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                             env=env, start_new_session=True)
        try:
            rc, cpu = _wait(p, timeout)
        except subprocess.TimeoutExpired:
            rc = None
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(p.pid, sig)   # the group we created for this test file
                except ProcessLookupError:
                    break
                try:
                    _, cpu = _wait(p, 5)
                    break
                except subprocess.TimeoutExpired:
                    continue
            # Shared memory left by a killed shoald: harness.py names it shoaltest-<test pid>-<n>.
            for name in glob.glob("/dev/shm/shoaltest-%d-*" % p.pid):
                try:
                    os.unlink(name)
                except OSError:
                    pass
    with open(log_path, "rb") as f:
        out = f.read().decode("utf-8", "replace")
    return rc, out, time.monotonic() - t0, cpu


SLOWEST = 12   # how many of the slowest integration tests the summary lists


def print_times(file_secs, test_secs, wall):
    """The timing summary: every part slowest first, then the SLOWEST slowest tests."""
    total = sum(s for _, s in file_secs)
    print("time per part (%.1fs in all, %.1fs from start to end):" % (total, wall))
    for name, secs in sorted(file_secs, key=lambda x: -x[1]):
        print("  %6.1fs %4.1f%%  %s" % (secs, 100.0 * secs / total if total else 0, name))
    if test_secs:
        print("slowest tests:")
        for secs, name in sorted(test_secs, reverse=True)[:SLOWEST]:
            print("  %6.1fs  %s" % (secs, name))


def run_unit(build, k, timeout, logdir):
    exe = os.path.join(build, "unit_tests")
    if not os.access(exe, os.X_OK):
        print("unit: %s not found" % exe)
        return 0, 1, 0.0
    argv = [exe]
    if k:
        argv.append("--gtest_filter=*%s*" % k)
    rc, out, secs, _ = run_group(argv, os.environ.copy(), timeout, os.path.join(logdir, "unit_tests.log"))
    mp = re.search(r"^\[  PASSED  \] (\d+) tests?", out, re.M)
    passed = int(mp.group(1)) if mp else 0
    mf = re.search(r"^\[  FAILED  \] (\d+) tests?, listed below", out, re.M)
    failed = int(mf.group(1)) if mf else 0
    if rc is None:
        failed += 1
        print(out[-5000:])
        print("unit: TIMEOUT after %.0fs" % secs)
    elif rc != 0 and failed == 0:
        failed = 1   # crashed or failed before the summary
        print(out[-5000:])
    elif failed:
        print("\n".join(l for l in out.splitlines() if l.startswith("[  FAILED  ]")))
    if rc == 0 and mp is None:
        failed += 1
        print(out[-5000:])
        print("unit: could not parse the GoogleTest summary")
    print("unit_tests: %d passed, %d failed (%.1fs)" % (passed, failed, secs))
    return passed, failed, secs


# Integration files run alone even with --jobs 2: three compare rates or durations (two deploys'
# times, answers per second under a flood, a token bucket's refill), which a file running beside
# them would skew; test_man runs `make install`, which relinks the binaries the other files run
# when the build is older than the sources. test_cluster_ws chooses a node's ports (ws, metrics)
# seconds before that node starts; a file beside it drawing ephemeral client ports took one once.
ALONE = {"test_datacenter", "test_floods", "test_quotas", "test_man", "test_cluster_ws"}
# The slowest files (about 30 s and more on a quiet 2-core machine), started first so that the
# lanes of --jobs end together; every other file follows in name order.
SLOW_FIRST = ["test_chaos_scale", "test_cluster_ws", "test_cluster", "test_chaos", "test_http",
              "test_http_transfer", "test_ws", "test_rolling_rings", "test_access_list"]


def run_file(path, k, env, timeout, logdir):
    """Runs one integration file; returns (name, passed, failed, skipped, seconds, CPU seconds,
    status, output); status None when -k matched no test in it."""
    name = os.path.basename(path)[:-3]
    argv = [PYTHON, path]
    if k and k not in name:
        argv += ["-k", k]
    rc, out, secs, cpu = run_group(argv, env, timeout, os.path.join(logdir, name + ".log"))
    m = None
    for m in re.finditer(r"^SHOAL-RESULT passed=(\d+) failed=(\d+) skipped=(\d+)", out, re.M):
        pass
    if m:
        p, f, s = int(m.group(1)), int(m.group(2)), int(m.group(3))
    else:
        p, f, s = 0, 0, 0
    status = "ok"
    if rc is None:
        f += 1
        status = "TIMEOUT after %.0fs" % secs
    elif m is None:
        f += 1
        status = "no result line (exit %s)" % rc
    elif rc != 0 and f == 0:
        f += 1
        status = "exit %s" % rc
    elif f:
        status = "FAILED"
    elif p == 0 and s > 0 and not k:
        f += 1   # a file that skipped everything tested nothing: say so, and fail
        status = "ALL %d SKIPPED (a missing tool or binary?)" % s
    if k and p + f == 0 and s == 0 and rc == 0:
        status = None
    return name, p, f, s, secs, cpu, status, out


def run_integration(build, k, timeout, logdir, only_files=None, file_secs=None, test_secs=None, jobs=1):
    """Runs the integration files, `jobs` at a time (the ALONE files afterwards, one at a time);
    prints a line per file as it ends. Appends (file, seconds) to file_secs and (seconds, test id)
    to test_secs. Returns (passed, failed)."""
    env = os.environ.copy()
    build = os.path.abspath(build)
    env["SHOALD"] = os.path.join(build, "shoald")
    env["SHM_INSPECT"] = os.path.join(build, "shm_inspect")
    env["SHOAL_BUILD"] = build
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    totals = [0, 0]
    files = sorted(glob.glob(os.path.join(HERE, "integration", "test_*.py")))
    if only_files:
        files = [f for f in files if os.path.basename(f)[:-3] in only_files]
        missing = set(only_files) - {os.path.basename(f)[:-3] for f in files}
        if missing:
            print("no such integration file: %s" % ", ".join(sorted(missing)))
            return 0, len(missing)
    name_of = lambda f: os.path.basename(f)[:-3]
    if jobs > 1:
        rank = {n: i for i, n in enumerate(SLOW_FIRST)}
        files.sort(key=lambda f: (name_of(f) in ALONE, rank.get(name_of(f), len(rank))))
    lock = threading.Lock()

    def report(res):
        name, p, f, s, secs, cpu, status, out = res
        with lock:
            if status is None:
                print("%-24s no test matched -k %s" % (name, k))
                return
            if f:
                print(out[-12000:])
            print("%-24s %3d passed, %d failed, %d skipped  %6.1fs  cpu %5.1fs  %s"
                  % (name, p, f, s, secs, cpu, status), flush=True)
            totals[0] += p
            totals[1] += f
            if file_secs is not None:
                file_secs.append((name, secs))
            if test_secs is not None:
                test_secs.extend((float(t.group(1)), t.group(2).replace("__main__.", name + "."))
                                 for t in re.finditer(r"^SHOAL-TIME ([0-9.]+) (\S+)", out, re.M))

    together = [f for f in files if jobs == 1 or name_of(f) not in ALONE]
    with concurrent.futures.ThreadPoolExecutor(max(1, jobs)) as pool:
        for fut in concurrent.futures.as_completed(
                [pool.submit(run_file, f, k, env, timeout, logdir) for f in together]):
            report(fut.result())
    for f in files:
        if f not in together:
            report(run_file(f, k, env, timeout, logdir))
    return totals[0], totals[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", required=True, help="build directory (shoald, unit_tests, shm_inspect)")
    ap.add_argument("--only", choices=("unit", "integration"))
    ap.add_argument("-k", metavar="NAME", help="only tests whose name contains NAME")
    ap.add_argument("--timeout", type=float, default=300.0, help="hard timeout per file (s)")
    ap.add_argument("--jobs", type=int, default=1,
                    help="integration files run at a time (default 1); the ALONE files still run alone")
    ap.add_argument("--logdir", default=None, help="where to keep per-file output")
    ap.add_argument("--files", default=None,
                    help="comma-separated integration files to run (e.g. test_bad_input,test_http); default all")
    a = ap.parse_args()
    logdir = a.logdir or os.path.join(os.path.abspath(a.build), "test-logs")
    os.makedirs(logdir, exist_ok=True)
    passed = failed = 0
    file_secs, test_secs = [], []
    t0 = time.monotonic()
    if a.only in (None, "unit"):
        p, f, secs = run_unit(a.build, a.k, a.timeout, logdir)
        passed += p
        failed += f
        file_secs.append(("unit_tests", secs))
    if a.only in (None, "integration"):
        p, f = run_integration(a.build, a.k, a.timeout, logdir, a.files.split(",") if a.files else None,
                               file_secs, test_secs, a.jobs)
        passed += p
        failed += f
    print_times(file_secs, test_secs, time.monotonic() - t0)
    if passed + failed == 0:
        failed = 1
        print("nothing ran: no test passed or failed")
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
