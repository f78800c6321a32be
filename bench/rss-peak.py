#!/usr/bin/env python3
"""rss-peak.py OUT PHASEFILE PID...: where each process's peak RSS went.

Samples /proc/PID/status every 100 ms until SIGTERM or SIGINT. Keeps, per
process, the largest VmRSS seen in each phase (the phase is the first line
of PHASEFILE, written by the driver, bench/rss-peak.sh) and, at each new
overall peak, a breakdown of /proc/PID/smaps by mapping: the LMDB map
(data.mdb), [heap] (the main thread's malloc arena), the other anonymous
mappings of 200 kB or more (thread arenas, large blocks), the small ones,
thread stacks and the file-backed rest (binary and libraries). Writes both
to OUT when stopped. Reads /proc only: it never signals the processes.
"""
import os
import re
import signal
import sys
import time

MAPPING = re.compile(r"^[0-9a-f]+-[0-9a-f]+ ")
stop = False


def on_signal(*_):
    global stop
    stop = True


def status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                out[key] = int(value.split()[0])
    return out


def kind(path, addr):
    if path.endswith("data.mdb"):
        return "lmdb"
    if path == "[heap]":
        return "heap"
    if path.startswith("[stack"):
        return "stack"
    if path.startswith("/"):
        return "libs"
    if path == "":
        return "anon@" + addr
    return path


def breakdown(pid):
    rss = {}
    name = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            if MAPPING.match(line):
                parts = line.split(None, 5)
                name = kind(parts[5].strip() if len(parts) > 5 else "",
                            parts[0])
            elif line.startswith("Rss:"):
                rss[name] = rss.get(name, 0) + int(line.split()[1])
    small = sum(v for k, v in rss.items() if k.startswith("anon@") and v < 200)
    out = {k: v for k, v in rss.items()
           if not (k.startswith("anon@") and v < 200)}
    out["anon_small"] = small
    return out


def main():
    out_path, phase_path = sys.argv[1], sys.argv[2]
    pids = [int(p) for p in sys.argv[3:]]
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    peak = {p: (0, None) for p in pids}
    phases = []
    by_phase = {}
    while not stop:
        try:
            with open(phase_path) as f:
                phase = f.readline().strip() or "-"
        except OSError:
            phase = "-"
        if phase not in phases:
            phases.append(phase)
        for p in pids:
            try:
                s = status(p)
            except OSError:
                continue
            k = (p, phase)
            if s["VmRSS"] > by_phase.get(k, (0,))[0]:
                by_phase[k] = (s["VmRSS"], s["RssAnon"], s["RssFile"])
            if s["VmRSS"] > peak[p][0] + 256:
                try:
                    peak[p] = (s["VmRSS"], breakdown(p))
                except OSError:
                    pass
        time.sleep(0.1)
    with open(out_path, "w") as f:
        f.write("peak VmRSS per phase, MB rss/anon/file, one column a pid\n")
        for ph in phases:
            cols = ["%d/%d/%d" % tuple(x // 1024 for x in
                                       by_phase.get((p, ph), (0, 0, 0)))
                    for p in pids]
            f.write(f"  {ph:20s} " + "  ".join(cols) + "\n")
        f.write("at the peak, kB of Rss by mapping\n")
        for p in pids:
            try:
                hwm = status(p)["VmHWM"]
            except OSError:
                hwm = "?"
            rss, b = peak[p]
            items = sorted((b or {}).items(), key=lambda kv: -kv[1])
            f.write(f"  pid {p} VmHWM={hwm} VmRSS={rss} " +
                    " ".join(f"{k}={v}" for k, v in items if v >= 100) +
                    "\n")


if __name__ == "__main__":
    main()
