"""A simulated datacenter in network namespaces the test creates (iproute2), for tests that must
see what crosses a network: racks of hosts, each rack a bridge behind its own router, each router
linked to one core by a rate-limited uplink (tc tbf). Nothing leaves the namespaces made here.

    core            10.99.0.1 (on lo: where the tracker listens); routes 10.R.0.0/24 via 10.200.R.2
     |  uplink R    core side "rk<R>" 10.200.R.1/30  <->  rack side "up0" 10.200.R.2/30
    rack R          bridge br0 10.R.0.254/24; default via 10.200.R.1
     |  veth        rack side "h<H>" (on br0)  <->  host side "eth0" 10.R.0.H/24
    host R.H        default via 10.R.0.254

Names carry the test's pid, so parallel runs do not collide; close() deletes every namespace.
Processes started in a namespace (run()) must be stopped by the caller, by PID, before close()."""
import itertools
import json
import os
import subprocess

_serial = itertools.count(1)

CORE_ADDR = "10.99.0.1"


def ip(*args, ns=None):
    argv = ["ip"] + (["-n", ns] if ns else []) + list(args)
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=20)
    if r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(argv), r.stdout.decode().strip()))
    return r.stdout.decode()


def in_ns(ns, *argv):
    return ["ip", "netns", "exec", ns] + list(argv)


def sh(ns, *argv):
    r = subprocess.run(in_ns(ns, *argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=20)
    if r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(argv), r.stdout.decode().strip()))
    return r.stdout.decode()


def available():
    """'' when this process may create network namespaces, else why not."""
    if os.geteuid() != 0:
        return "creating network namespaces needs root"
    name = "shoalprobe%d" % os.getpid()
    try:
        ip("netns", "add", name)
        ip("netns", "del", name)
    except (RuntimeError, FileNotFoundError) as e:
        return str(e)
    return ""


class Datacenter:
    def __init__(self, racks, hosts_per_rack, uplink_mbit, extra_hosts=()):
        """extra_hosts: (rack, host number) pairs beyond 1..hosts_per_rack (e.g. a seeder)."""
        self.tag = "shdc%d-%d" % (os.getpid(), next(_serial))
        self.racks = list(range(1, racks + 1))
        self.hosts = [(r, h) for r in self.racks for h in range(1, hosts_per_rack + 1)] + list(extra_hosts)
        self.uplink_mbit = uplink_mbit
        self.made = []
        try:
            self._build()
        except BaseException:
            self.close()
            raise

    # names ------------------------------------------------------------------------
    @property
    def core(self):
        return self.tag + "-core"

    def rack_ns(self, r):
        return "%s-r%d" % (self.tag, r)

    def host_ns(self, r, h):
        return "%s-r%dh%d" % (self.tag, r, h)

    @staticmethod
    def host_addr(r, h):
        return "10.%d.0.%d" % (r, h)

    # building ---------------------------------------------------------------------
    def _add_ns(self, name):
        ip("netns", "add", name)
        self.made.append(name)
        ip("link", "set", "lo", "up", ns=name)

    def _limit(self, ns, dev):
        sh(ns, "tc", "qdisc", "add", "dev", dev, "root", "tbf", "rate", "%dmbit" % self.uplink_mbit,
           "burst", "64kb", "latency", "200ms")

    def _build(self):
        self._add_ns(self.core)
        ip("addr", "add", CORE_ADDR + "/32", "dev", "lo", ns=self.core)
        sh(self.core, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        for r in self.racks:
            rk = self.rack_ns(r)
            self._add_ns(rk)
            sh(rk, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
            ip("link", "add", "br0", "type", "bridge", ns=rk)
            ip("addr", "add", "10.%d.0.254/24" % r, "dev", "br0", ns=rk)
            ip("link", "set", "br0", "up", ns=rk)
            ip("link", "add", "rk%d" % r, "type", "veth", "peer", "name", "up0", "netns", rk, ns=self.core)
            ip("addr", "add", "10.200.%d.1/30" % r, "dev", "rk%d" % r, ns=self.core)
            ip("link", "set", "rk%d" % r, "up", ns=self.core)
            ip("addr", "add", "10.200.%d.2/30" % r, "dev", "up0", ns=rk)
            ip("link", "set", "up0", "up", ns=rk)
            ip("route", "add", "default", "via", "10.200.%d.1" % r, ns=rk)
            ip("route", "add", "10.%d.0.0/24" % r, "via", "10.200.%d.2" % r, ns=self.core)
            self._limit(rk, "up0")                 # out of the rack
            self._limit(self.core, "rk%d" % r)     # into the rack
        for r, h in self.hosts:
            hn, rk = self.host_ns(r, h), self.rack_ns(r)
            self._add_ns(hn)
            ip("link", "add", "eth0", "type", "veth", "peer", "name", "h%d" % h, "netns", rk, ns=hn)
            ip("link", "set", "h%d" % h, "master", "br0", ns=rk)
            ip("link", "set", "h%d" % h, "up", ns=rk)
            ip("addr", "add", self.host_addr(r, h) + "/24", "dev", "eth0", ns=hn)
            ip("link", "set", "eth0", "up", ns=hn)
            ip("route", "add", "default", "via", "10.%d.0.254" % r, ns=hn)

    # measuring --------------------------------------------------------------------
    def uplink_bytes(self, r):
        """(bytes into rack r, bytes out of it) so far: the rack side of its uplink."""
        info = json.loads(ip("-j", "-s", "link", "show", "up0", ns=self.rack_ns(r)))[0]["stats64"]
        return info["rx"]["bytes"], info["tx"]["bytes"]

    def run_argv(self, r, h, argv):
        """argv run inside host r.h."""
        return in_ns(self.host_ns(r, h), *argv)

    def close(self):
        for name in reversed(self.made):
            try:
                ip("netns", "del", name)
            except RuntimeError:
                pass
        self.made = []


class Island:
    """One network namespace with lo and a veth pair whose two ends (10.98.0.1/24 and
    10.98.0.2/24) both stay inside: for WebRTC peers, which gather candidates on every interface
    but lo, and must find a non-loopback address that leads nowhere outside. Programs run in it
    with run_argv(); loopback inside is the namespace's own. close() deletes it."""

    ADDRS = ("10.98.0.1", "10.98.0.2")

    def __init__(self):
        self.name = "shis%d-%d" % (os.getpid(), next(_serial))
        ip("netns", "add", self.name)
        try:
            ip("link", "set", "lo", "up", ns=self.name)
            ip("link", "add", "wa", "type", "veth", "peer", "name", "wb", ns=self.name)
            for dev, addr in zip(("wa", "wb"), self.ADDRS):
                ip("addr", "add", addr + "/24", "dev", dev, ns=self.name)
                ip("link", "set", dev, "up", ns=self.name)
        except BaseException:
            self.close()
            raise

    def run_argv(self, argv):
        return in_ns(self.name, *argv)

    def close(self):
        if self.name:
            try:
                ip("netns", "del", self.name)
            except RuntimeError:
                pass
            self.name = None
