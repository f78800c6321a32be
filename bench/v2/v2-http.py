#!/usr/bin/env python3
"""v2 keys API: CPU seconds per request of a one-member cairn and of
Debian's etcd 3.4, side by side in one run (same client, same machine):
sequential PUTs, local GETs and quorum GETs over /v2/keys, one HTTP
connection per request (cairn closes each; etcd's keep-alive is not
used, so both pay the same connects). Server CPU is utime + stime from
/proc/<pid>/stat; wall times are printed but, the machine being shared,
compare CPU. Prints one RESULT line per operation.

usage: bench/v2/v2-http.py <path to cairn> [requests per op, 2000]
"""
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def request(port, method, path, body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    hdrs = {"Content-Type": "application/x-www-form-urlencoded"} if body else {}
    c.request(method, path, body=body, headers=hdrs)
    r = c.getresponse()
    r.read()
    c.close()
    return r.status


def start(binary, root, name):
    cp, pp = free_port(), free_port()
    args = [binary, "--name", name, "--enable-v2",
            "--data-dir", os.path.join(root, name),
            "--listen-client-urls", "http://127.0.0.1:%d" % cp,
            "--advertise-client-urls", "http://127.0.0.1:%d" % cp,
            "--listen-peer-urls", "http://127.0.0.1:%d" % pp,
            "--initial-advertise-peer-urls", "http://127.0.0.1:%d" % pp,
            "--initial-cluster", "%s=http://127.0.0.1:%d" % (name, pp)]
    log = open(os.path.join(root, name + ".log"), "wb")
    p = subprocess.Popen(args, stdout=log, stderr=log)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            if request(cp, "PUT", "/v2/keys/ready", "value=1") in (200, 201):
                return p, cp
        except OSError:
            pass
        time.sleep(0.05)
    p.kill()
    raise SystemExit("%s did not start" % name)


def run(p, port, op, n):
    t0, c0 = time.time(), cpu_s(p.pid)
    for i in range(n):
        if op == "put":
            st = request(port, "PUT", "/v2/keys/b/k%d" % (i % 100),
                         "value=v%d" % i)
        elif op == "get":
            st = request(port, "GET", "/v2/keys/b/k%d" % (i % 100))
        else:
            st = request(port, "GET", "/v2/keys/b/k%d?quorum=true" % (i % 100))
        assert st in (200, 201), (op, st)
    return (cpu_s(p.pid) - c0) / n, (time.time() - t0) / n


def main():
    cairn = os.path.abspath(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    etcd = shutil.which("etcd")
    root = tempfile.mkdtemp(prefix="cairn-v2-bench-")
    procs = []
    try:
        a, ap = start(cairn, root, "cairn")
        procs.append(a)
        e, ep = start(etcd, root, "etcd")
        procs.append(e)
        for op in ("put", "get", "qget"):
            ca, wa = run(a, ap, op, n)
            ce, we = run(e, ep, op, n)
            print("RESULT v2_%s requests=%d cairn_cpu_us=%.1f etcd_cpu_us=%.1f "
                  "cpu_ratio=%.2f cairn_wall_us=%.0f etcd_wall_us=%.0f"
                  % (op, n, ca * 1e6, ce * 1e6, ca / ce if ce else 0,
                     wa * 1e6, we * 1e6))
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
