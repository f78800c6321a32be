#!/usr/bin/env python3
"""Process-level TLS and unix-socket tests of `cairn` (issue 9, docs/tls.md):
real members on 127.0.0.1 (ports picked here) or on unix sockets in a temp
dir, certificates made per run with Debian's `openssl` CLI, etcd's etcdctl
as the good client and Python's ssl module as the bad ones. Every process
is stopped by pid at the end, also on failure. Waits are liveness bounds,
never speed assertions.

usage: tls_test.py <path to cairn> <case>   (cases: see CASES below)
"""

import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

LIVENESS_S = 30.0
# net's default handshake deadline (NET_TLS_HANDSHAKE_TIMEOUT_DEFAULT_MS)
# plus slack for a loaded machine.
HANDSHAKE_DEADLINE_S = 10.0 + 20.0


class Fail(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Fail(what)


_ports_given = set()


def free_port():
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _ports_given:
            _ports_given.add(port)
            return port
    raise Fail("no free port")


def run(args, cwd=None, env=None, timeout=LIVENESS_S):
    return subprocess.run(args, cwd=cwd, env=env, timeout=timeout,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


# ---- certificates (openssl CLI) ----

CA_CNF = """[ca]
default_ca = ca_default
[ca_default]
dir = %(dir)s
database = $dir/index.txt
new_certs_dir = $dir/newcerts
serial = $dir/serial
crlnumber = $dir/crlnumber
certificate = $dir/ca.pem
private_key = $dir/ca.key
default_md = sha256
default_days = 30
default_crl_days = 30
policy = policy_any
unique_subject = no
[policy_any]
commonName = supplied
[leaf]
basicConstraints = CA:FALSE
keyUsage = digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = ${ENV::SAN}
"""


class CA:
    """A throw-away certificate authority in dir, driven by `openssl ca`
    (which can back-date certificates and write CRLs)."""

    def __init__(self, root, name):
        self.dir = os.path.join(root, name)
        os.makedirs(os.path.join(self.dir, "newcerts"))
        open(os.path.join(self.dir, "index.txt"), "w").close()
        with open(os.path.join(self.dir, "serial"), "w") as f:
            f.write("1000\n")
        with open(os.path.join(self.dir, "crlnumber"), "w") as f:
            f.write("01\n")
        self.cnf = os.path.join(self.dir, "ca.cnf")
        with open(self.cnf, "w") as f:
            f.write(CA_CNF % {"dir": self.dir})
        self.cert = os.path.join(self.dir, "ca.pem")
        self.openssl(["req", "-x509", "-new", "-newkey", "ec", "-pkeyopt",
                      "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                      os.path.join(self.dir, "ca.key"), "-out", self.cert,
                      "-subj", "/CN=" + name, "-days", "30", "-addext",
                      "basicConstraints=critical,CA:TRUE", "-addext",
                      "keyUsage=critical,keyCertSign,cRLSign"])

    def openssl(self, args, san="DNS:localhost"):
        env = dict(os.environ, SAN=san)
        r = run(["openssl"] + args, env=env)
        check(r.returncode == 0,
              "openssl %s: %s" % (args[0], r.stdout.decode(errors="replace")))

    def issue(self, name, cn, san="DNS:localhost,IP:127.0.0.1",
              start=None, end=None):
        """Returns (cert, key) paths for a leaf certificate."""
        key = os.path.join(self.dir, name + ".key")
        csr = os.path.join(self.dir, name + ".csr")
        cert = os.path.join(self.dir, name + ".pem")
        self.openssl(["req", "-new", "-newkey", "ec", "-pkeyopt",
                      "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                      key, "-out", csr, "-subj", "/CN=" + cn])
        args = ["ca", "-batch", "-config", self.cnf, "-extensions", "leaf",
                "-in", csr, "-out", cert, "-notext"]
        if start is not None:
            args += ["-startdate", start, "-enddate", end]
        self.openssl(args, san=san)
        return cert, key

    def revoke(self, cert):
        self.openssl(["ca", "-config", self.cnf, "-revoke", cert])

    def crl(self):
        path = os.path.join(self.dir, "crl.pem")
        self.openssl(["ca", "-gencrl", "-config", self.cnf, "-out", path])
        return path


class Certs:
    """Every certificate the cases need, made once per run."""

    def __init__(self, root):
        self.ca = CA(root, "test-ca")
        self.other_ca = CA(root, "other-ca")
        ca = self.ca
        self.member = ca.issue("member", "member")
        self.client = ca.issue("client", "client",
                               san="DNS:client.example,IP:127.0.0.1")
        self.expired = ca.issue("expired", "member",
                                start="20200101000000Z",
                                end="20200201000000Z")
        self.revoked = ca.issue("revoked", "member")
        self.wrong_cn = ca.issue("wrongcn", "intruder")
        self.wrong_host = ca.issue("wronghost", "client",
                                   san="DNS:other.example,IP:127.0.0.1")
        self.foreign = self.other_ca.issue("foreign", "member")
        ca.revoke(self.revoked[0])
        self.crl = ca.crl()


# ---- members ----

class Member:
    def __init__(self, root, name, args, cwd=None):
        self.name = name
        self.log_path = os.path.join(root, name + ".log")
        self.args = args
        self.cwd = cwd
        self.proc = None

    def start(self, binary, procs, extra_env=None):
        log = open(self.log_path, "ab")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("ETCD_")}
        env.update(extra_env or {})
        self.proc = subprocess.Popen([binary] + self.args, stdout=log,
                                     stderr=log, env=env, cwd=self.cwd)
        log.close()
        procs.append(self.proc)

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_log(self, text, what):
        deadline = time.monotonic() + LIVENESS_S
        while time.monotonic() < deadline:
            if text in self.log_text():
                return
            check(self.proc.poll() is None,
                  "%s exited (%s) while waiting for %s:\n%s" %
                  (self.name, self.proc.returncode, what, self.log_text()))
            time.sleep(0.1)
        raise Fail("%s: no log line %r (%s):\n%s" %
                   (self.name, text, what, self.log_text()))

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=LIVENESS_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise Fail("%s did not stop on SIGTERM" % self.name)


def etcdctl(endpoints, args, tls=None, timeout_s=LIVENESS_S, cwd=None):
    """Runs etcdctl (API v3); returns (exit status, output text)."""
    cmd = ["etcdctl", "--endpoints", endpoints, "--dial-timeout", "5s",
           "--command-timeout", "10s"]
    if tls is not None:
        cmd += ["--cacert", tls[0], "--cert", tls[1], "--key", tls[2]]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD")}
    env["ETCDCTL_API"] = "3"
    r = subprocess.run(cmd + list(args), env=env, cwd=cwd,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout_s)
    return r.returncode, r.stdout.decode("utf-8", "replace")


def etcdctl_ok(endpoints, args, tls=None, cwd=None):
    """etcdctl until it succeeds (a member may still be starting)."""
    deadline = time.monotonic() + LIVENESS_S
    while True:
        rc, out = etcdctl(endpoints, args, tls=tls, cwd=cwd)
        if rc == 0:
            return out
        if time.monotonic() > deadline:
            raise Fail("etcdctl %s %s: %s" % (endpoints, args, out))
        time.sleep(0.3)


# ---- bad clients ----

def tls_attempt(port, certs, cert=None, ca=None, errors=None):
    """A TLS client with cert (or none); returns its local port, after the
    server has ended the connection or 5 s passed. The server may refuse
    during the handshake or, under TLS 1.3, right after it. What the
    client saw is appended to errors (a list) when given."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(ca or certs.ca.cert)
    if cert is not None:
        ctx.load_cert_chain(cert[0], cert[1])
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    local = s.getsockname()[1]
    try:
        t = ctx.wrap_socket(s)
        t.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        while t.recv(4096):
            pass
    except (ssl.SSLError, OSError) as e:
        if errors is not None:
            errors.append(str(e))
    finally:
        s.close()
    return local


def raw_attempt(port, data):
    """Sends data in the clear; returns the local port once the server
    closed the connection."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    local = s.getsockname()[1]
    try:
        s.sendall(data)
        while s.recv(4096):
            pass
    except OSError:
        pass
    finally:
        s.close()
    return local


def refused_line(member, local, reason):
    member.wait_log("TLS connection from 127.0.0.1:%d refused: " % local,
                    "refusal of %d" % local)
    lines = [ln for ln in member.log_text().splitlines()
             if "from 127.0.0.1:%d refused: " % local in ln]
    check(any(reason in ln for ln in lines),
          "refusal of 127.0.0.1:%d does not say %r: %s" %
          (local, reason, lines))


# ---- cases ----

def case_refusals(binary, root, procs):
    """Every kind of bad TLS input on the client and peer ports of one
    member is refused with a log line saying why, and the member serves
    good clients all along (TLS and plaintext)."""
    c = Certs(root)
    cport, pport, plain = free_port(), free_port(), free_port()
    peer = "https://127.0.0.1:%d" % pport
    m = Member(root, "m1", [
        "--name", "m1", "--data-dir", os.path.join(root, "m1.etcd"),
        "--listen-client-urls",
        "https://127.0.0.1:%d,http://127.0.0.1:%d" % (cport, plain),
        "--advertise-client-urls", "https://127.0.0.1:%d" % cport,
        "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
        "--initial-cluster", "m1=" + peer,
        "--cert-file", c.member[0], "--key-file", c.member[1],
        "--trusted-ca-file", c.ca.cert, "--client-cert-auth",
        "--client-crl-file", c.crl,
        "--client-cert-allowed-hostname", "client.example",
        "--peer-cert-file", c.member[0], "--peer-key-file", c.member[1],
        "--peer-trusted-ca-file", c.ca.cert, "--peer-client-cert-auth",
        "--peer-crl-file", c.crl, "--peer-cert-allowed-cn", "member",
    ])
    m.start(binary, procs)
    good = (c.ca.cert, c.client[0], c.client[1])
    ep = "https://127.0.0.1:%d" % cport
    etcdctl_ok(ep, ["put", "k", "v0"], tls=good)
    # A handshake that never finishes: opened first, judged at the end.
    silent = socket.create_connection(("127.0.0.1", cport), timeout=5)
    silent_local = silent.getsockname()[1]
    n = 0
    for port in (cport, pport):
        cases = [
            (raw_attempt(port, b"GET /health HTTP/1.1\r\n\r\n"),
             "handshake: "),
            (raw_attempt(port, bytes(range(7, 250))), "handshake: "),
            (tls_attempt(port, c), "handshake: "),  # no certificate
            (tls_attempt(port, c, c.expired), "certificate has expired"),
            (tls_attempt(port, c, c.revoked), "revoked"),
            (tls_attempt(port, c, c.foreign), "certificate verify failed"),
        ]
        if port == pport:
            # Refused inside the handshake: the client gets etcd's (Go's)
            # bad_certificate alert, not just a closed connection.
            seen = []
            cases.append((tls_attempt(port, c, c.wrong_cn, errors=seen),
                          'allowed CN "member"'))
            check(any("alert bad certificate" in e for e in seen),
                  "wrong-CN client saw no bad_certificate alert: %s" % seen)
        else:
            cases.append((tls_attempt(port, c, c.wrong_host),
                          'allowed hostname "client.example"'))
        for local, reason in cases:
            refused_line(m, local, reason)
            n += 1
            # ... and the member goes on serving everyone else.
            out = etcdctl_ok(ep, ["put", "k", "v%d" % n], tls=good)
            check("OK" in out, "put after a refusal: %s" % out)
    out = etcdctl_ok("http://127.0.0.1:%d" % plain, ["get", "k",
                                                     "--print-value-only"])
    check(out.strip() == "v%d" % n, "plaintext get: %r" % out)
    # etcdctl without a client certificate is refused as well.
    rc, out = etcdctl(ep, ["get", "k"], tls=None, timeout_s=LIVENESS_S)
    check(rc != 0, "etcdctl without a certificate was served: %s" % out)
    deadline = time.monotonic() + HANDSHAKE_DEADLINE_S
    silent.settimeout(max(1.0, deadline - time.monotonic()))
    try:
        check(silent.recv(1) == b"", "silent connection got bytes")
    except socket.timeout:
        raise Fail("a silent connection was not closed")
    finally:
        silent.close()
    refused_line(m, silent_local, "handshake did not finish within")
    m.stop()


def gateway_put(url, certs, key, value):
    """POST /v3/kv/put over https with the client certificate; the
    answer's revision, or None."""
    import base64
    import json
    import urllib.request
    ctx = ssl.create_default_context(cafile=certs.ca.cert)
    ctx.load_cert_chain(certs.client[0], certs.client[1])
    body = json.dumps({"key": base64.b64encode(key).decode(),
                       "value": base64.b64encode(value).decode()}).encode()
    deadline = time.monotonic() + LIVENESS_S
    while time.monotonic() < deadline:
        try:
            req = urllib.request.Request(url + "/v3/kv/put", data=body,
                                         method="POST")
            with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
                answer = json.loads(r.read().decode())
            if "header" in answer:
                return answer["header"].get("revision")
        except (OSError, ValueError):
            pass
        time.sleep(0.3)
    return None


def case_three(binary, root, procs):
    """Three members with peer TLS (client-cert-auth, allowed CN) and
    client TLS (client-cert-auth): etcdctl with --cacert/--cert/--key
    works on each, a follower forwards keep-alive to the leader over TLS;
    a member with a certificate from another CA is kept out."""
    c = Certs(root)
    names = ["m1", "m2", "m3"]
    ports = {n: (free_port(), free_port()) for n in names}
    initial = ",".join("%s=https://127.0.0.1:%d" % (n, ports[n][1])
                       for n in names)
    members = []
    for n in names:
        cp, pp = ports[n]
        cert = c.foreign if n == "m3" else c.member
        m = Member(root, n, [
            "--name", n, "--data-dir", os.path.join(root, n + ".etcd"),
            "--listen-client-urls", "https://127.0.0.1:%d" % cp,
            "--advertise-client-urls", "https://127.0.0.1:%d" % cp,
            "--listen-peer-urls", "https://127.0.0.1:%d" % pp,
            "--initial-advertise-peer-urls", "https://127.0.0.1:%d" % pp,
            "--initial-cluster", initial,
            "--heartbeat-interval", "50", "--election-timeout", "500",
            "--cert-file", c.member[0], "--key-file", c.member[1],
            "--trusted-ca-file", c.ca.cert, "--client-cert-auth",
            "--peer-cert-file", cert[0], "--peer-key-file", cert[1],
            "--peer-trusted-ca-file", c.ca.cert, "--peer-client-cert-auth",
            "--peer-cert-allowed-cn", "member",
            "--cipher-suites",
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,"
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
        ])
        m.start(binary, procs)
        members.append(m)
    good = (c.ca.cert, c.client[0], c.client[1])
    eps = ["https://127.0.0.1:%d" % ports[n][0] for n in names]
    # m1 and m2 are a quorum; m3's peer certificate is not from their CA.
    etcdctl_ok(eps[0], ["put", "a", "1"], tls=good)
    out = etcdctl_ok(eps[1], ["get", "a", "--print-value-only"], tls=good)
    check(out.strip().splitlines()[-1] == "1", "get on m2: %r" % out)
    members[0].wait_log("certificate verify failed", "m3 refused by m1")
    # ... and m3 logs the alert as etcd (Go) does.
    members[2].wait_log("remote error: tls: unknown certificate authority",
                        "m3 told why")
    rc, out = etcdctl(eps[2], ["put", "a", "2"], tls=good, timeout_s=30)
    check(rc != 0, "m3 with a foreign peer certificate served a write")
    # The JSON gateway on a TLS-only client port reaches the member's gRPC
    # side over TLS with the member's own certificate, as etcd's does.
    check(gateway_put(eps[1], c, b"gw", b"json") is not None,
          "gateway put over https")
    out = etcdctl_ok(eps[0], ["get", "gw", "--print-value-only"], tls=good)
    check(out.strip().splitlines()[-1] == "json", "gateway's put: %r" % out)
    out = etcdctl_ok(eps[0], ["member", "list"], tls=good)
    # m3 never joined, so it has published no client URL.
    check(all(u in out for u in eps[:2]) and
          "https://127.0.0.1:%d" % ports["m3"][1] in out,
          "member list shows the https URLs: %s" % out)
    out = etcdctl_ok(eps[0], ["lease", "grant", "30"], tls=good)
    lease = out.split()[1]
    for ep in eps[:2]:
        out = etcdctl_ok(ep, ["lease", "keep-alive", "--once", lease],
                         tls=good)
        check("keepalived" in out, "keep-alive on %s: %s" % (ep, out))
    # m3 with the right certificate joins its data dir's cluster.
    members[2].stop()
    cp, pp = ports["m3"]
    members[2].args = [a if a not in c.foreign else
                       c.member[c.foreign.index(a)]
                       for a in members[2].args]
    members[2].start(binary, procs)
    out = etcdctl_ok(eps[2], ["get", "a", "--print-value-only"], tls=good)
    check(out.strip().splitlines()[-1] == "1",
          "get on m3 after its restart: %r" % out)
    for m in members:
        m.stop()


def case_auto(binary, root, procs):
    """--auto-tls and --peer-auto-tls as etcd: self-signed certificates in
    <data-dir>/fixtures, peers not verified, clients with --insecure-
    skip-tls-verify served; the certificates are reused on restart."""
    names = ["a1", "a2", "a3"]
    ports = {n: (free_port(), free_port()) for n in names}
    initial = ",".join("%s=https://127.0.0.1:%d" % (n, ports[n][1])
                       for n in names)
    members = []
    for n in names:
        cp, pp = ports[n]
        m = Member(root, n, [
            "--name", n, "--data-dir", os.path.join(root, n + ".etcd"),
            "--listen-client-urls", "https://127.0.0.1:%d" % cp,
            "--advertise-client-urls", "https://127.0.0.1:%d" % cp,
            "--listen-peer-urls", "https://127.0.0.1:%d" % pp,
            "--initial-advertise-peer-urls", "https://127.0.0.1:%d" % pp,
            "--initial-cluster", initial, "--auto-tls", "--peer-auto-tls",
            "--heartbeat-interval", "50", "--election-timeout", "500",
        ])
        m.start(binary, procs)
        members.append(m)
    ins = ["--insecure-skip-tls-verify", "--insecure-transport=false"]
    for i, n in enumerate(names):
        ep = "https://127.0.0.1:%d" % ports[n][0]
        etcdctl_ok(ep, ins + ["put", "k%d" % i, n])
    cert = os.path.join(root, "a1.etcd", "fixtures", "peer", "cert.pem")
    key = os.path.join(root, "a1.etcd", "fixtures", "peer", "key.pem")
    check(os.path.exists(cert) and os.stat(key).st_mode & 0o077 == 0,
          "a1's peer auto-TLS files")
    r = run(["openssl", "x509", "-in", cert, "-noout", "-text"])
    text = r.stdout.decode()
    check("NIST CURVE: P-521" in text and "O = etcd" in text and
          "TLS Web Client Authentication" in text,
          "peer auto-TLS certificate as etcd's: %s" % text)
    with open(cert, "rb") as f:
        before = f.read()
    members[0].stop()
    members[0].start(binary, procs)
    etcdctl_ok("https://127.0.0.1:%d" % ports["a1"][0],
               ins + ["get", "k2"])
    with open(cert, "rb") as f:
        check(f.read() == before, "auto-TLS certificate made again")
    for m in members:
        m.stop()


def case_unix(binary, root, procs):
    """unix:// and unixs:// URLs for clients and peers, the socket path
    formed as etcd forms it (host + path: unix://localhost:N is the file
    localhost:N in the working directory)."""
    c = Certs(root)
    work = os.path.join(root, "work")
    os.makedirs(work)
    names = ["u1", "u2", "u3"]
    # u1, u2 on unix peers; u3 on unixs peers: every kind of dial.
    peers = {"u1": "unix://localhost:%d" % free_port(),
             "u2": "unix://localhost:%d" % free_port(),
             "u3": "unixs://localhost:%d" % free_port()}
    initial = ",".join("%s=%s" % (n, peers[n]) for n in names)
    members = []
    for n in names:
        # The unixs name is host-like too: etcdctl checks the server's
        # certificate against it (localhost).
        client = "unix://localhost:%d,unixs://localhost:%d" % (
            free_port(), free_port())
        m = Member(root, n, [
            "--name", n, "--data-dir", os.path.join(root, n + ".etcd"),
            "--listen-client-urls", client,
            "--advertise-client-urls", client,
            "--listen-peer-urls", peers[n],
            "--initial-advertise-peer-urls", peers[n],
            "--initial-cluster", initial,
            "--cert-file", c.member[0], "--key-file", c.member[1],
            "--peer-cert-file", c.member[0], "--peer-key-file", c.member[1],
            "--peer-trusted-ca-file", c.ca.cert,
            "--heartbeat-interval", "50", "--election-timeout", "500",
        ], cwd=work)
        m.start(binary, procs)
        members.append((m, client.split(",")))
    for i, (m, urls) in enumerate(members):
        etcdctl_ok(urls[0], ["put", "k%d" % i, "v"], cwd=work)
        path = urls[0][len("unix://"):]
        check(os.path.exists(os.path.join(work, path)),
              "socket file %s in the working directory" % path)
    # The unixs client socket, with the CA (no client certificate needed).
    m, urls = members[0]
    rc, out = etcdctl(urls[1], ["--cacert", c.ca.cert, "get", "k2",
                                "--print-value-only"], cwd=work)
    check(rc == 0 and out.strip().splitlines()[-1] == "v",
          "get over unixs: %s" % out)
    for m, urls in members:
        m.stop()
        check(not os.path.exists(os.path.join(work, urls[0][7:])),
              "socket file removed on stop")


def case_errors(binary, root, procs):
    """Flag and file errors stop cairn with etcd's texts; certificate and
    key errors name the file and OpenSSL's reason."""
    c = Certs(root)
    dd = os.path.join(root, "e.etcd")
    p = free_port()
    https = ["--listen-client-urls", "https://127.0.0.1:%d" % p,
             "--advertise-client-urls", "https://127.0.0.1:%d" % p,
             "--listen-peer-urls", "http://127.0.0.1:%d" % free_port()]
    bad_key = os.path.join(root, "garbage.key")
    with open(bad_key, "w") as f:
        f.write("not a key\n")
    expectations = [
        (https, 1, "TLS key/cert (--cert-file, --key-file) must be provided "
                   "for client url https://127.0.0.1:%d with HTTPS scheme"
                   % p),
        (https + ["--cert-file", c.member[0]], 1,
         "KeyFile and CertFile must both be present"),
        (https + ["--cert-file", "/nonexistent/c.pem", "--key-file",
                  c.member[1]], 1,
         "/nonexistent/c.pem"),
        (https + ["--cert-file", c.member[0], "--key-file", bad_key], 1,
         bad_key),
        (https + ["--cert-file", c.member[0], "--key-file", c.client[1]], 1,
         "key values mismatch"),
        (["--cipher-suites", "TLS_NOPE"], 2,
         'unexpected TLS cipher suite "TLS_NOPE"'),
        (["--ca-file", c.ca.cert], 2,
         "flag provided but not defined: -ca-file"),
        (["--listen-peer-urls", "https://127.0.0.1:%d" % p,
          "--initial-advertise-peer-urls", "https://127.0.0.1:%d" % p,
          "--initial-cluster", "default=https://127.0.0.1:%d" % p,
          "--listen-client-urls", "http://127.0.0.1:%d" % free_port(),
          "--advertise-client-urls", "http://127.0.0.1:1"], 1,
         "cannot listen on TLS for 127.0.0.1:%d: KeyFile and CertFile are "
         "not presented" % p),
    ]
    for args, status, text in expectations:
        shutil.rmtree(dd, ignore_errors=True)
        r = run([binary, "--data-dir", dd] + args)
        out = r.stdout.decode("utf-8", "replace")
        check(r.returncode == status and text in out,
              "cairn %s: status %d (want %d), output lacks %r:\n%s" %
              (args, r.returncode, status, text, out))
        if "/nonexistent" in text or text == bad_key:
            check("error:" in out, "OpenSSL's reason missing: %s" % out)


def case_late_https(binary, root, procs):
    """A member added later with an https peer URL to a cluster that started
    without any peer TLS is dialed as etcd dials it (its empty TLSInfo:
    the system's roots, which SSL_CERT_FILE points at the test CA here),
    so the two-member cluster keeps a quorum and writes go on."""
    c = Certs(root)
    cp1, pp1, cp2, pp2 = free_port(), free_port(), free_port(), free_port()
    ep1 = "http://127.0.0.1:%d" % cp1
    ep2 = "http://127.0.0.1:%d" % cp2
    peer1 = "http://127.0.0.1:%d" % pp1
    peer2 = "https://127.0.0.1:%d" % pp2
    timing = ["--heartbeat-interval", "50", "--election-timeout", "500"]
    m1 = Member(root, "m1", [
        "--name", "m1", "--data-dir", os.path.join(root, "m1.etcd"),
        "--listen-client-urls", ep1, "--advertise-client-urls", ep1,
        "--listen-peer-urls", peer1, "--initial-advertise-peer-urls", peer1,
        "--initial-cluster", "m1=" + peer1] + timing)
    m1.start(binary, procs, extra_env={"SSL_CERT_FILE": c.ca.cert})
    etcdctl_ok(ep1, ["put", "a", "1"])
    out = etcdctl_ok(ep1, ["member", "add", "m2", "--peer-urls=" + peer2])
    check("added to cluster" in out, "member add: %s" % out)
    # m2 serves its peer port with a certificate and asks for none (m1
    # has none to show), and dials m1 in plaintext.
    m2 = Member(root, "m2", [
        "--name", "m2", "--data-dir", os.path.join(root, "m2.etcd"),
        "--listen-client-urls", ep2, "--advertise-client-urls", ep2,
        "--listen-peer-urls", peer2, "--initial-advertise-peer-urls", peer2,
        "--initial-cluster", "m1=%s,m2=%s" % (peer1, peer2),
        "--initial-cluster-state", "existing",
        "--peer-cert-file", c.member[0], "--peer-key-file", c.member[1],
    ] + timing)
    m2.start(binary, procs)
    # Two members: a write needs m1's messages to reach m2 over https.
    etcdctl_ok(ep1, ["put", "b", "2"])
    out = etcdctl_ok(ep2, ["get", "b", "--print-value-only"])
    check(out.strip().splitlines()[-1] == "2", "get on m2: %r" % out)
    out = etcdctl_ok(ep2, ["get", "a", "--print-value-only"])
    check(out.strip().splitlines()[-1] == "1", "m2 caught up: %r" % out)
    m2.stop()
    m1.stop()


def case_both(binary, root, procs):
    """Plaintext and TLS clients on one port (and one unix socket path),
    as etcd's --listen-client-urls http://h:p,https://h:p: etcdctl in the
    clear and over TLS with --client-cert-auth, an HTTP/1.1 request in
    the clear, and a TLS client without a certificate refused."""
    c = Certs(root)
    work = os.path.join(root, "work")
    os.makedirs(work)
    port, sock, peer = free_port(), free_port(), free_port()
    client = ("http://127.0.0.1:%d,https://127.0.0.1:%d,"
              "unix://localhost:%d,unixs://localhost:%d" %
              (port, port, sock, sock))
    purl = "http://127.0.0.1:%d" % peer
    m = Member(root, "b1", [
        "--name", "b1", "--data-dir", os.path.join(root, "b1.etcd"),
        "--listen-client-urls", client,
        "--advertise-client-urls", "http://127.0.0.1:%d" % port,
        "--listen-peer-urls", purl, "--initial-advertise-peer-urls", purl,
        "--initial-cluster", "b1=" + purl,
        "--cert-file", c.member[0], "--key-file", c.member[1],
        "--trusted-ca-file", c.ca.cert, "--client-cert-auth",
    ], cwd=work)
    m.start(binary, procs)
    tls = (c.ca.cert, c.client[0], c.client[1])
    etcdctl_ok("http://127.0.0.1:%d" % port, ["put", "k", "plain"])
    out = etcdctl_ok("https://127.0.0.1:%d" % port,
                     ["get", "k", "--print-value-only"], tls=tls)
    check(out.strip() == "plain", "get over https: %r" % out)
    etcdctl_ok("unix://localhost:%d" % sock, ["put", "k", "unix"], cwd=work)
    out = etcdctl_ok("unixs://localhost:%d" % sock,
                     ["get", "k", "--print-value-only"], tls=tls, cwd=work)
    check(out.strip() == "unix", "get over unixs: %r" % out)
    # HTTP/1.1 in the clear on the shared port
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close"
              b"\r\n\r\n")
    got = b""
    while True:
        d = s.recv(4096)
        if not d:
            break
        got += d
    s.close()
    check(b"200" in got.split(b"\r\n")[0] and b'"health":"true"' in got,
          "/health in the clear: %r" % got)
    # --client-cert-auth still holds on the TLS side
    local = tls_attempt(port, c)
    refused_line(m, local, "peer did not return a certificate")
    rc, out = etcdctl("https://127.0.0.1:%d" % port, ["get", "k"],
                      tls=(c.ca.cert, c.foreign[0], c.foreign[1]),
                      timeout_s=LIVENESS_S)
    check(rc != 0, "a foreign certificate was accepted: %s" % out)
    m.stop()


CASES = {
    "refusals": case_refusals,
    "three": case_three,
    "auto": case_auto,
    "unix": case_unix,
    "errors": case_errors,
    "late_https": case_late_https,
    "both": case_both,
}


def main():
    if len(sys.argv) != 3 or sys.argv[2] not in CASES:
        print(__doc__, file=sys.stderr)
        return 2
    if shutil.which("etcdctl") is None or shutil.which("openssl") is None:
        print("tls_test: needs etcdctl and openssl", file=sys.stderr)
        return 2
    binary = os.path.abspath(sys.argv[1])
    root = tempfile.mkdtemp(prefix="cairn-tls-")
    procs = []
    ok = False
    try:
        CASES[sys.argv[2]](binary, root, procs)
        ok = True
    except Fail as e:
        print("FAIL %s: %s" % (sys.argv[2], e), file=sys.stderr)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        if ok:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print("logs kept in %s" % root, file=sys.stderr)
    print("%s %s" % ("PASS" if ok else "FAIL", sys.argv[2]))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
