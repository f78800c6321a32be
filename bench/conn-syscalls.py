#!/usr/bin/env python3
"""conn-syscalls.py OLD_CAIRN NEW_CAIRN: system calls a one-member cairn
makes per client connection (strace -c -f attached to it), for a
plaintext-only, a TLS-only and a both-on-one-port client listener
(docs/tls.md "Plaintext and TLS on one port"). Each connection sends GET
/health over HTTP/1.1 (TLS with etcd's integration fixtures as client
certificate) and reads the answer. Old and new alternate; REPS rounds of
N connections (env). The "both" listener runs on NEW only (older binaries
cannot bind it). Prints RESULT lines; per_conn leaves out epoll_wait and
futex, which idle ticks also make. Run under flock /tmp/cairn-bench.lock.
"""
import os, signal, socket, ssl, subprocess, sys, tempfile, time, re, shutil

FIX = "/usr/share/gocode/src/go.etcd.io/etcd/integration/fixtures"
N = int(os.environ.get("N", "300"))

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def wait_port(port, deadline=15):
    end = time.time() + deadline
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close(); return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("no listener")

def one(port, tls):
    s = socket.create_connection(("127.0.0.1", port))
    if tls:
        ctx = ssl.create_default_context(cafile=FIX + "/ca.crt")
        ctx.load_cert_chain(FIX + "/server.crt", FIX + "/server.key.insecure")
        ctx.set_alpn_protocols(["http/1.1"])
        s = ctx.wrap_socket(s, server_hostname="localhost")
    s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = b""
    while b"health" not in data:
        d = s.recv(4096)
        if not d: break
        data += d
    assert b"true" in data, data
    s.close()

def run(binary, mode, side):
    d = tempfile.mkdtemp(prefix="both-bench-")
    cp, pp = free_port(), free_port()
    urls = {"plain": f"http://127.0.0.1:{cp}", "tls": f"https://127.0.0.1:{cp}",
            "both": f"http://127.0.0.1:{cp},https://127.0.0.1:{cp}"}[mode]
    args = [binary, "--name", "a", "--data-dir", d + "/d", "--listen-client-urls", urls,
            "--advertise-client-urls", urls.split(",")[0],
            "--listen-peer-urls", f"http://127.0.0.1:{pp}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{pp}",
            "--initial-cluster", f"a=http://127.0.0.1:{pp}"]
    if mode != "plain":
        args += ["--cert-file", FIX + "/server.crt", "--key-file", FIX + "/server.key.insecure",
                 "--trusted-ca-file", FIX + "/ca.crt"]
    srv = subprocess.Popen(args, stderr=open(d + "/log", "w"))
    st = None
    try:
        wait_port(cp)
        for _ in range(5): one(cp, side == "tls")  # warm
        out = d + "/strace"
        st = subprocess.Popen(["strace", "-f", "-c", "-o", out, "-p", str(srv.pid)],
                              stderr=subprocess.PIPE, text=True)
        # "strace: Process N attached with T threads" once attached
        line = st.stderr.readline()
        if "attached" not in line:
            raise SystemExit("strace did not attach: " + line)
        for _ in range(N): one(cp, side == "tls")
        st.send_signal(signal.SIGINT); st.wait(10); st = None
        counts = {}
        for line in open(out):
            m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$", line)
            if m and m.group(2) != "total":
                counts[m.group(2)] = int(m.group(1))
        return counts
    finally:
        if st: st.kill(); st.wait()
        srv.send_signal(signal.SIGTERM)
        try: srv.wait(10)
        except subprocess.TimeoutExpired: srv.kill(); srv.wait()
        shutil.rmtree(d, ignore_errors=True)

cases = [("plain", "plain"), ("tls", "tls"), ("both", "plain"), ("both", "tls")]
bins = {"old": sys.argv[1], "new": sys.argv[2]}
for rep in range(int(os.environ.get("REPS", "2"))):
    for mode, side in cases:
        for name in (["old", "new"] if rep % 2 == 0 else ["new", "old"]):
            if mode == "both" and name == "old":
                continue  # old cannot bind it
            c = run(bins[name], mode, side)
            tot = sum(v for k, v in c.items() if k not in ("epoll_wait", "epoll_pwait", "futex", "restart_syscall"))
            keys = " ".join(f"{k}={c[k]/N:.2f}" for k in sorted(c) if c[k] >= N // 2)
            print(f"RESULT conn_syscalls bin={name} listen={mode} client={side} n={N} "
                  f"per_conn={tot/N:.2f} {keys}", flush=True)
