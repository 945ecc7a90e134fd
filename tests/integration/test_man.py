"""The man pages stay complete and clean: man/shoald.8, man/shoal.conf.5 and man/shoalctl.8 are
checked against the code they describe, so a new option, setting, signal, stats command, field,
counter or metric without documentation fails here.

  - mandoc -T lint -W warning and groff -ww report nothing for each page;
  - every setting printed by `shoald -p` has an entry in shoal.conf.5 that gives its default and
    when a change takes effect, and every entry there is a real setting;
  - every option letter and long option of supervisor/main.cpp, and every signal the supervisor
    handles (kHandledSignals in supervisor/supervisor.cpp), is in shoald.8;
  - every command of stats_commands() and every field it prints (supervisor/stats_commands.cpp),
    every counter of SHOAL_WORKER_COUNTERS (shm/counters.hpp, same order), every metric and
    label value of supervisor/metrics_http.cpp, and every option of tools/shoalctl.cpp, is in
    shoalctl.8;
  - `make install DESTDIR=<tmp>` installs the pages, shoalctl and the systemd unit, and
    `man -l` renders each installed page without a warning.
Runs from the repository root (or anywhere: paths are taken from this file).
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402

REPO = harness.REPO
SHOALD = harness.SHOALD
BUILD = os.environ.get("SHOAL_BUILD", os.path.dirname(SHOALD))
PAGES = ["shoald.8", "shoal.conf.5", "shoalctl.8"]


def source(rel):
    with open(os.path.join(REPO, rel), encoding="utf-8") as f:
        return f.read()


def page(name):
    return source(os.path.join("man", name))


def need(tool):
    if shutil.which(tool) is None:
        raise AssertionError("%s is not installed (it is in the Makefile's DEB_PACKAGES: make deps)" % tool)


def strip_cxx_comments(text):
    return re.sub(r"//[^\n]*", "", text)


# ------------------------------------------------------------------ reading mdoc source

def entries(src, macro):
    """{key: block} for every `.It <macro> key ...` line: block is the source up to the next .It,
    .El or .Sh at any depth below it (good enough for the flat tag lists of these pages)."""
    out = {}
    lines = src.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"\.It %s (\S+)" % macro, line)
        if not m:
            continue
        j = i + 1
        while j < len(lines) and not re.match(r"\.(It|El|Sh)\b", lines[j]):
            j += 1
        out.setdefault(m.group(1), "\n".join(lines[i:j]))
    return out


def item_words(src, macro):
    """Every `.It <macro> a b c` line as the words before the first macro (Ar, Op...) or punctuation."""
    out = []
    for line in src.splitlines():
        m = re.match(r"\.It %s (.*)" % macro, line)
        if m:
            words = []
            for w in m.group(1).split():
                if re.fullmatch(r"[A-Z][a-z]|[.,:;|()]", w):
                    break
                words.append(w)
            out.append(" ".join(words))
    return out


def section(src, name):
    m = re.search(r"^\.Sh %s\n(.*?)(?=^\.Sh |\Z)" % re.escape(name), src, re.S | re.M)
    return m.group(1) if m else ""


# ------------------------------------------------------------------ reading the code

def settings_from_print(text):
    """[(dotted name, default text)] from `shoald -p` (libconfig: groups and name = value;)."""
    # Comments (# and //) end a line, but not inside a string ("nats://host:port").
    text = re.sub(r'("(?:[^"\\]|\\.)*")|(?:#|//)[^\n]*', lambda m: m.group(1) or "", text)
    tokens = re.findall(r'"(?:[^"\\]|\\.)*"|[A-Za-z_][A-Za-z0-9_\-]*|[-+]?[0-9][0-9A-Za-z.+-]*|\S', text)
    out, stack, i = [], [], 0
    while i < len(tokens):
        t = tokens[i]
        if t == "}":
            stack.pop()
            i += 1
            continue
        if re.match(r"[A-Za-z_]", t) and i + 1 < len(tokens) and tokens[i + 1] in ("=", ":"):
            name = ".".join(stack + [t])
            if tokens[i + 2] == "{":
                stack.append(t)
                i += 3
                continue
            j, depth, value = i + 2, 0, []
            while j < len(tokens) and not (depth == 0 and tokens[j] in (";", ",")):
                depth += tokens[j] in "[(" and 1 or 0
                depth -= tokens[j] in "])" and 1 or 0
                value.append(tokens[j])
                j += 1
            out.append((name, value))
            i = j + 1
            continue
        i += 1
    return out


def counters():
    """[(name, help)] of SHOAL_WORKER_COUNTERS, in order."""
    text = source("shm/counters.hpp")
    m = re.search(r"#define SHOAL_WORKER_COUNTERS\(X\)(.*?)\n\s*\n", text, re.S)
    return re.findall(r'X\((\w+),\s*"((?:[^"\\]|\\.)*)"\)', m.group(1))


def stats_commands():
    text = strip_cxx_comments(source("supervisor/stats_commands.cpp"))
    m = re.search(r"stats_commands\(\)\s*\{(.*?)\n\}", text, re.S)
    return re.findall(r'\{\s*"([a-z][a-z -]*)"\s*,\s*"', m.group(1))


def stats_fields():
    text = strip_cxx_comments(source("supervisor/stats_commands.cpp"))
    return sorted(set(re.findall(r'json_object_set_new\(\s*\w+\s*,\s*"(\w+)"', text)))


def getopt_letters(rel):
    text = strip_cxx_comments(source(rel))
    m = re.search(r'getopt(?:_long)?\([^"]*"\+?([^"]*)"', text)
    return [c for c in m.group(1) if c not in ":+"]


class ManPagesTest(unittest.TestCase):

    def test_mandoc_lint_is_clean(self):
        need("mandoc")
        for name in PAGES:
            with self.subTest(page=name):
                r = subprocess.run(["mandoc", "-T", "lint", "-W", "warning", os.path.join(REPO, "man", name)],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
                self.assertEqual(r.stdout.decode(), "")
                self.assertEqual(r.returncode, 0)

    def test_groff_warnings_are_clean(self):
        need("groff")
        for name in PAGES:
            with self.subTest(page=name):
                r = subprocess.run(["groff", "-mandoc", "-ww", "-z", os.path.join(REPO, "man", name)],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
                self.assertEqual(r.stdout.decode(), "")
                self.assertEqual(r.returncode, 0)

    def test_pages_have_a_real_date_and_matching_title(self):
        for name in PAGES:
            src = page(name)
            self.assertRegex(src, r"(?m)^\.Dd [A-Z][a-z]+ \d{1,2}, \d{4}$", name)
            title, sec = name.rsplit(".", 1)
            self.assertRegex(src, r"(?m)^\.Dt %s %s$" % (re.escape(title.upper()), sec), name)
            for sh in ("NAME", "SYNOPSIS", "DESCRIPTION", "SEE ALSO"):
                self.assertIn(".Sh %s\n" % sh, src, "%s lacks .Sh %s" % (name, sh))

    def test_every_setting_is_documented_with_default_and_reload(self):
        harness.need_shoald()
        r = subprocess.run([SHOALD, "-p"], stdout=subprocess.PIPE, timeout=10, check=True)
        settings = settings_from_print(r.stdout.decode())
        self.assertGreater(len(settings), 20, "could not parse shoald -p")
        documented = entries(page("shoal.conf.5"), "Cm")
        for name, value in settings:
            with self.subTest(setting=name):
                self.assertIn(name, documented, "shoal.conf.5 has no `.It Cm %s` entry" % name)
                block = documented[name]
                for token in value:
                    literal = token.strip('"')
                    if token in ("[", "]", "(", ")") or literal == "":
                        continue
                    self.assertIn(literal, block, "default of %s (%s) not in its entry" % (name, " ".join(value)))
                self.assertRegex(block, r"restart|SIGHUP|SIGUSR1", "%s: entry does not say when it takes effect" % name)
        names = {n for n, _ in settings}
        stale = [k for k in entries(section(page("shoal.conf.5"), "SETTINGS"), "Cm") if k not in names]
        self.assertEqual(stale, [], "shoal.conf.5 documents settings that shoald -p does not print")

    def test_every_option_and_signal_is_in_shoald_8(self):
        src = page("shoald.8")
        letters = getopt_letters("supervisor/main.cpp")
        self.assertIn("c", letters)
        items = item_words(src, "Fl")
        synopsis = "".join(re.findall(r"Fl (\S+)", section(src, "SYNOPSIS")))
        for c in letters:
            with self.subTest(option=c):
                self.assertIn(c, items, "shoald.8 has no `.It Fl %s`" % c)
                self.assertIn(c, synopsis, "-%s is not in the SYNOPSIS" % c)
        main = strip_cxx_comments(source("supervisor/main.cpp"))
        for long_name in re.findall(r'\{"([a-z-]+)",\s*(?:no|required|optional)_argument', main):
            self.assertIn("Fl -%s" % long_name, src, "--%s is not in shoald.8" % long_name)
        sup = strip_cxx_comments(source("supervisor/supervisor.cpp"))
        handled = re.search(r"kHandledSignals\[\]\s*=\s*\{([^}]*)\}", sup).group(1)
        signals = section(src, "SIGNALS")
        for sig in re.findall(r"SIG[A-Z0-9]+", handled):
            self.assertIn("Dv %s" % sig, signals, "%s is not in the SIGNALS section of shoald.8" % sig)

    def test_version_example_matches_the_binary(self):
        # shoald(8) shows what `shoald -V` prints; a layout bump must update the page.
        out = subprocess.run([SHOALD, "-V"], capture_output=True, text=True, timeout=10).stdout.strip()
        self.assertRegex(out, r"^shoald \S+, shm layout \d+$")
        self.assertIn(".Ql %s ," % out, page("shoald.8"), "shoald.8's -V example is not %r" % out)

    def test_help_example_matches_the_table(self):
        # shoalctl(8) quotes one `help` line; it must be what the command table gives.
        text = strip_cxx_comments(source("supervisor/stats_commands.cpp"))
        usage, what = re.search(r'\{"show torrent",\s*"([^"]*)",\s*"([^"]*)"', text).groups()
        self.assertIn(".Ql %s: %s ." % (usage, what), page("shoalctl.8"))

    def test_every_segment_is_in_shoald_8(self):
        src = page("shoald.8")
        text = source("shm/segment.cpp")
        for suffix in re.findall(r'"/"\s*\+\s*prefix\s*\+\s*"(-[a-z]+-?)"', text):
            self.assertIn("Pa %s" % suffix, src, "segment suffix %s is not in shoald.8" % suffix)

    def test_every_stats_command_and_field_is_in_shoalctl_8(self):
        src = page("shoalctl.8")
        commands = stats_commands()
        self.assertIn("show stats", commands)
        documented = item_words(src, "Ic")
        for words in commands:
            self.assertIn(words, documented, "shoalctl.8 has no `.It Ic %s`" % words)
        for field in stats_fields():
            self.assertRegex(src, r"\bVa %s\b" % field, "field %s is not in shoalctl.8" % field)

    def test_every_counter_is_in_shoalctl_8_in_order(self):
        src = page("shoalctl.8")
        names = [n for n, _ in counters()]
        self.assertIn("udp_received", names)
        m = re.search(r"\.Va counters\n(.*?)\.Bl -tag[^\n]*\n(.*?)\n\.El", src, re.S)
        self.assertIsNotNone(m, "shoalctl.8: no list after `.Va counters`")
        listed = re.findall(r"(?m)^\.It Va (\w+)", m.group(2))
        self.assertEqual(listed, names, "shoalctl.8's counter list differs from SHOAL_WORKER_COUNTERS")

    def test_every_metric_is_in_shoalctl_8(self):
        path = os.path.join(REPO, "supervisor", "metrics_http.cpp")
        if not os.path.exists(path):
            self.skipTest("no metrics endpoint")
        src = page("shoalctl.8")
        text = strip_cxx_comments(source("supervisor/metrics_http.cpp"))
        metrics = set(re.findall(r'header\(\s*&?\w+\s*,\s*"(\w+)"', text))
        self.assertIn("shoal_requests_total", metrics)
        metrics_section = section(src, "METRICS")
        for name in sorted(metrics):
            self.assertIn("Va %s" % name, metrics_section, "metric %s is not in shoalctl.8" % name)
        labels = set(re.findall(r'(\w+)=\\"(\w+)\\"', text))
        for label, value in sorted(labels):
            self.assertRegex(metrics_section, r"Ql %s\b" % value, "label %s=%s is not in shoalctl.8" % (label, value))
        causes = {v for k, v in labels if k == "cause"}
        documented = set(re.findall(r"(?m)^\.Ql (\w+)", entries(metrics_section, "Va").get("shoal_errors_total", "")))
        self.assertEqual(documented - causes, set(), "shoalctl.8 lists causes that shoal_errors_total does not have")
        if re.search(r'"shoal_"\s*\)?\s*\+\s*shm::kCounterInfo', text) or "kCounterInfo[k].name" in text:
            self.assertRegex(metrics_section, r"Va shoal_ Ns .*\bcounter\b.* Ns Va _total", "shoal_<counter>_total")

    def test_shoalctl_options_are_in_shoalctl_8(self):
        path = os.path.join(REPO, "tools", "shoalctl.cpp")
        if not os.path.exists(path):
            self.skipTest("no tools/shoalctl.cpp")
        src = page("shoalctl.8")
        for c in getopt_letters("tools/shoalctl.cpp"):
            self.assertIn("Fl %s" % c, src, "shoalctl -%s is not in shoalctl.8" % c)
        for word in re.findall(r'strcmp\(argv\[optind\],\s*"([a-z-]+)"\)', source("tools/shoalctl.cpp")):
            self.assertIn("Cm %s" % word, src, "shoalctl %s is not in shoalctl.8" % word)

    def test_make_install_installs_pages_that_man_renders(self):
        need("man")
        harness.need_shoald()
        dest = tempfile.mkdtemp(prefix="shoal-install-")
        self.addCleanup(shutil.rmtree, dest, True)
        prefix = "/usr/local"
        r = subprocess.run(["make", "-s", "-C", REPO, "install", "DESTDIR=" + dest, "BUILD=" + os.path.abspath(BUILD),
                            "PREFIX=" + prefix], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=600)
        self.assertEqual(r.returncode, 0, r.stdout.decode("utf-8", "replace")[-3000:])
        root = dest + prefix
        installed = [os.path.join(root, "share/man/man8/shoald.8"), os.path.join(root, "share/man/man8/shoalctl.8"),
                     os.path.join(root, "share/man/man5/shoal.conf.5")]
        for f in installed + [os.path.join(root, "sbin/shoald"), os.path.join(dest, "etc/shoal/shoal.conf")]:
            self.assertTrue(os.path.isfile(f), "not installed: %s" % f)
        # The operator tools the README names are installed too.
        for tool in ("shoalctl", "shoal-shm-inspect", "shoal-udp-load"):
            self.assertTrue(os.access(os.path.join(root, "bin", tool), os.X_OK), "%s not installed" % tool)
        with open(os.path.join(dest, "lib/systemd/system/shoald.service")) as f:
            unit = f.read()
        self.assertIn("ExecStart=%s/sbin/shoald -c /etc/shoal/shoal.conf\n" % prefix, unit)
        for line in ("Type=notify", "KillMode=mixed", "LimitNOFILE=1048576", "Restart=on-failure", "RestartSec=1s",
                     "NoNewPrivileges=yes", "ProtectSystem=strict", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE CAP_NET_ADMIN CAP_SETUID CAP_SETGID CAP_CHOWN"):
            self.assertIn(line + "\n", unit)
        # systemd itself accepts every directive (the man pages are not installed system-wide
        # here, so systemd-analyze's complaints about man: links are left out).
        if shutil.which("systemd-analyze"):
            r = subprocess.run(["systemd-analyze", "verify", os.path.join(dest, "lib/systemd/system/shoald.service")],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60,
                               env=dict(os.environ, SYSTEMD_LOG_LEVEL="warning"))
            problems = [l for l in r.stdout.decode("utf-8", "replace").splitlines()
                        if l.strip() and "Command 'man " not in l and "is not executable" not in l
                        and "No such file" not in l]
            self.assertEqual(problems, [], r.stdout.decode("utf-8", "replace"))
        env = dict(os.environ, MANWIDTH="80", MANPAGER="cat", PAGER="cat", LC_ALL="C.UTF-8")
        for f in installed:
            with self.subTest(page=os.path.basename(f)):
                r = subprocess.run(["man", "-l", f], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, env=env, timeout=60)
                err = r.stderr.decode("utf-8", "replace")
                self.assertEqual(r.returncode, 0, err)
                self.assertNotRegex(err, r"(?i)warning|error", err)
                out = r.stdout.decode("utf-8", "replace")
                self.assertIn("NAME", out)
                self.assertIn("SEE ALSO", out)


if __name__ == "__main__":
    harness.main()
