#!/usr/bin/env python3
"""Helper of bench/probe.sh: times one run of a probe tool, and prints the
table of all runs.

    probe_run.py run [options] -- COMMAND...   one run; a JSON line on stdout
    probe_run.py report RESULTS.jsonl          the table of medians

`run` spawns COMMAND in a session of its own and reports, as one JSON line:
the time from the spawn to the first line of its standard output that
matches --expect ("first_s"), the time to its exit ("exit_s"), its exit
status, its peak memory (maximum RSS in KiB, from /usr/bin/time: the
tool, or a command it ran if that was larger), the "Pass N: ... in X ms" times it
printed on standard error (kscope probe -v), the time a workload printed
("readloop: N reads in T ns"), and the last lines of its output.

Options of `run`:
  --case NAME --tool NAME --run N
                             labels copied into the JSON line
  --expect REGEX             the output line that counts as the first event
  --reads                    while the tool runs, read one byte of /dev/zero
                             every half millisecond, so that a probe on
                             read() has an event as soon as it is attached
  --tracefs mounted|unmounted|any
                             mount tracefs at /sys/kernel/tracing for the
                             run (and unmount it after) when it is not
                             mounted: bpftrace needs it; "unmounted" only
                             checks. Mounting is not timed.
  --lock PATH                hold an flock on PATH, a file or a directory,
                             during the run (kscope's tests take one on
                             /sys/kernel while they change tracefs)
  --timeout SECONDS          stop the tool (SIGINT, then SIGKILL) after this

On SIGINT or SIGTERM, `run` stops the tool's whole process group (SIGINT,
then SIGKILL after 3 s), unmounts what it mounted, and exits 130.
"""

import fcntl
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

TRACEFS = "/sys/kernel/tracing"


def tracefs_mounted():
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if right.split(" ", 1)[0] == "tracefs":
                return True
    return False


class Run:
    def __init__(self):
        self.proc = None
        self.mounted_here = False
        self.stopping = False
        self.rss_file = None

    def stop_tool(self):
        """SIGINT to the tool's process group, then SIGKILL after 3 s."""
        p = self.proc
        if p is None or p.returncode is not None:
            return
        try:
            os.killpg(p.pid, signal.SIGINT)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            if p.poll() is not None:
                break
            time.sleep(0.02)
        try:
            # Whatever is left of the group (the tool, or a -c command).
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if p.returncode is None:
            try:
                p.wait(timeout=5)
            except (subprocess.TimeoutExpired, ChildProcessError):
                pass

    def unmount(self):
        if self.mounted_here:
            self.mounted_here = False
            if tracefs_mounted():
                subprocess.run(["umount", TRACEFS], check=False)

    def remove_rss_file(self):
        if self.rss_file:
            try:
                os.unlink(self.rss_file)
            except FileNotFoundError:
                pass
            self.rss_file = None

    def on_signal(self, signum, _frame):
        if self.stopping:
            return
        self.stopping = True
        self.stop_tool()
        self.unmount()
        self.remove_rss_file()
        os._exit(130)


def run(argv):
    opts = {"case": "", "tool": "", "run": "0", "expect": None, "count": None, "sum": None,
            "reads": False,
            "workload": False, "tracefs": "any", "lock": None, "timeout": 60.0}
    i = 0
    while i < len(argv) and argv[i] != "--":
        key = argv[i].lstrip("-")
        if key in ("reads", "workload"):
            opts[key] = True
            i += 1
            continue
        if key not in opts or i + 1 >= len(argv):
            sys.exit(f"probe_run.py: bad option {argv[i]}")
        opts[key] = argv[i + 1]
        i += 2
    command = argv[i + 1:]
    if not command:
        sys.exit("probe_run.py run: no command after --")
    expect = re.compile(opts["expect"]) if opts["expect"] else None

    state = Run()
    signal.signal(signal.SIGINT, state.on_signal)
    signal.signal(signal.SIGTERM, state.on_signal)

    lock = None
    if opts["lock"]:
        # A directory (/sys/kernel) or a file: opened to read, never made.
        lock = os.open(opts["lock"], os.O_RDONLY)
        fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        was_mounted = tracefs_mounted()
        if opts["tracefs"] == "mounted" and not was_mounted:
            # Set first: a signal may come while mount(8) runs.
            state.mounted_here = True
            if subprocess.run(["mount", "-t", "tracefs", "nodev", TRACEFS]).returncode:
                state.mounted_here = False
                sys.exit(f"probe_run.py: cannot mount tracefs at {TRACEFS}")
        elif opts["tracefs"] == "unmounted" and was_mounted:
            # Someone else's mount (the lock keeps kscope's tests out).
            print(json.dumps({"case": opts["case"], "tool": opts["tool"],
                              "run": int(opts["run"]), "stderr_tail": [],
                              "error": "tracefs was mounted, and this run is "
                                       "of kscope with tracefs unmounted"}))
            return
        result = timed(command, expect, opts, state)
        result["tracefs_mounted_before"] = was_mounted or state.mounted_here
        result["error"] = check(result, opts)
    finally:
        state.unmount()
        if lock is not None:
            os.close(lock)
    result["tracefs_mounted_after"] = tracefs_mounted()
    print(json.dumps(result), flush=True)


def check(result, opts):
    """Why the run does not count, or None."""
    if result["timed_out"]:
        return f"no exit within {opts['timeout']} s: stopped"
    if result["rc"] != 0:
        return f"exit status {result['rc']}"
    if opts["expect"] and result["first_s"] is None:
        return f"no output line matched {opts['expect']!r}"
    if opts["workload"] and result["loop"] is None:
        return "the workload printed no time"
    if opts["sum"]:
        # The counts of several keys, one line each: their total.
        counts = [re.search(opts["sum"], line) for line in result["stdout_tail"]]
        counts = [int(m.group(1)) for m in counts if m]
        if not counts:
            return f"no output line matched {opts['sum']!r}"
        result["counted"] = sum(counts)
        if result["loop"] and result["counted"] < result["loop"]["reads"]:
            return (f"counted {result['counted']} reads, fewer than the "
                    f"{result['loop']['reads']} the workload made")
    if opts["count"]:
        for line in reversed(result["stdout_tail"]):
            m = re.search(opts["count"], line)
            if m:
                result["counted"] = int(m.group(1))
                break
        else:
            return f"no output line matched {opts['count']!r}"
        if result["loop"] and result["counted"] < result["loop"]["reads"]:
            return (f"counted {result['counted']} reads, fewer than the "
                    f"{result['loop']['reads']} the workload made")
    return None


def timed(command, expect, opts, state):
    first = [None]
    out_tail = []
    err_lines = []
    stop_reads = threading.Event()

    # Peak memory comes from GNU time, not from this process's wait4: the
    # child of a Python process starts as a (v)fork of it, and Linux keeps
    # the largest RSS the process had before exec(), Python's own, in
    # ru_maxrss. time(1) is small, so what it reports is the tool's.
    rss_file = tempfile.NamedTemporaryFile(prefix="probe_run.", suffix=".rss", delete=False)
    rss_file.close()
    state.rss_file = rss_file.name
    wrapped = ["/usr/bin/time", "-f", "%M", "-o", rss_file.name, "--"] + command

    t0 = time.perf_counter()
    p = subprocess.Popen(wrapped, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True)
    state.proc = p

    def read_out():
        for raw in iter(p.stdout.readline, b""):
            now = time.perf_counter()
            line = raw.decode(errors="replace").rstrip("\n")
            if first[0] is None and (expect is None or expect.search(line)):
                first[0] = now - t0
                stop_reads.set()
            out_tail.append(line)
            del out_tail[:-200]

    def read_err():
        for raw in iter(p.stderr.readline, b""):
            err_lines.append(raw.decode(errors="replace").rstrip("\n"))
            del err_lines[:-200]

    def reads():
        fd = os.open("/dev/zero", os.O_RDONLY)
        try:
            while not stop_reads.is_set():
                os.read(fd, 1)
                time.sleep(0.0005)
        finally:
            os.close(fd)

    threads = [threading.Thread(target=read_out, daemon=True),
               threading.Thread(target=read_err, daemon=True)]
    if opts["reads"]:
        threads.append(threading.Thread(target=reads, daemon=True))
    for t in threads:
        t.start()

    timed_out = threading.Event()

    def on_timeout():
        # Signals only: the main thread, in wait4, reaps the tool.
        timed_out.set()
        for sig, delay in ((signal.SIGINT, 3), (signal.SIGKILL, 0)):
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                return
            time.sleep(delay)

    timer = threading.Timer(float(opts["timeout"]), on_timeout)
    timer.daemon = True
    timer.start()
    _, status, _ = os.wait4(p.pid, 0)
    t_exit = time.perf_counter() - t0
    timer.cancel()
    p.returncode = os.waitstatus_to_exitcode(status)
    stop_reads.set()
    try:
        # The tool's -c command, if still alive, keeps the pipes open.
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    for t in threads[:2]:
        t.join(timeout=5)

    try:
        with open(rss_file.name) as f:
            # The last line: time(1) writes "Command exited with non-zero
            # status N" first when there is one.
            maxrss_kb = int(f.read().split()[-1])
    except (OSError, ValueError, IndexError):
        maxrss_kb = None
    finally:
        state.remove_rss_file()
    passes = {}
    loop = None
    for line in err_lines:
        m = re.match(r"Pass (\d): .* in ([0-9.]+) ms", line)
        if m:
            passes[m.group(1)] = float(m.group(2))
        m = re.match(r"readloop: (\d+) reads in (\d+) ns", line)
        if m:
            loop = {"reads": int(m.group(1)), "ns": int(m.group(2))}
    return {
        "case": opts["case"], "tool": opts["tool"], "run": int(opts["run"]),
        "command": command,
        "rc": p.returncode, "timed_out": timed_out.is_set(), "first_s": first[0], "exit_s": t_exit,
        "maxrss_kb": maxrss_kb, "passes_ms": passes, "loop": loop,
        "stdout_tail": out_tail, "stderr_tail": err_lines[-10:],
    }


# ---------------------------------------------------------------- report

def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt_ms(s):
    return "-" if s is None else f"{s * 1000:.1f}"


def fmt_ratio(a, b):
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:.2f}"


def report(path):
    rows = [json.loads(line) for line in open(path) if line.strip()]
    bad = [r for r in rows if r.get("error")]
    for r in bad:
        print(f"FAILED: {r['case']} / {r['tool']}: {r['error']}", file=sys.stderr)
        for line in r.get("stderr_tail", []):
            print(f"    {line}", file=sys.stderr)
    good = [r for r in rows if not r.get("error")]
    by = {}
    for r in good:
        by.setdefault((r["case"], r["tool"]), []).append(r)

    cases = []
    for r in good:
        if r["case"] not in cases:
            cases.append(r["case"])
    runs = max((len(v) for v in by.values()), default=0)

    print(f"\nStart-up: medians of {runs} runs; ms from launch; peak RSS in MB")
    print(f"{'script':<10} {'tool':<28} {'1st event':>10} {'exit':>8} {'max RSS':>8}"
          f" {'passes 1-5':>11}")
    startup = [c for c in cases if c not in ("overhead", "maps")]
    ratios = []
    for case in startup:
        tools = [t for (c, t) in by if c == case]
        for tool in tools:
            rs = by[(case, tool)]
            first = med([r["first_s"] for r in rs])
            exit_ = med([r["exit_s"] for r in rs])
            rss = med([r["maxrss_kb"] for r in rs])
            passes = med([sum(r["passes_ms"].values()) if r["passes_ms"] else None
                          for r in rs])
            print(f"{case:<10} {tool:<28} {fmt_ms(first):>10} {fmt_ms(exit_):>8}"
                  f" {rss / 1024:>8.1f} {('-' if passes is None else f'{passes:.1f}'):>11}")
        ratios.append(case)
    print("\nRatios kscope/bpftrace (below 1: kscope is faster or smaller)")
    print(f"{'script':<10} {'kscope run':<28} {'1st event':>10} {'exit':>8} {'max RSS':>8}")
    for case in ratios:
        b = by.get((case, "bpftrace"))
        if not b:
            continue
        for tool in [t for (c, t) in by if c == case and t.startswith("kscope")]:
            k = by[(case, tool)]
            print(f"{case:<10} {tool:<28}"
                  f" {fmt_ratio(med([r['first_s'] for r in k]), med([r['first_s'] for r in b])):>10}"
                  f" {fmt_ratio(med([r['exit_s'] for r in k]), med([r['exit_s'] for r in b])):>8}"
                  f" {fmt_ratio(med([r['maxrss_kb'] for r in k]), med([r['maxrss_kb'] for r in b])):>8}")

    print("\nkscope's own start to attached (-v: sum of the Pass 1-5 times; "
          "medians, ms)")
    for (case, tool), rs in by.items():
        if not tool.startswith("kscope") or case in ("overhead", "maps"):
            continue
        keys = sorted({k for r in rs for k in r["passes_ms"]})
        parts = "  ".join(f"P{k} {med([r['passes_ms'].get(k) for r in rs]):.1f}" for k in keys)
        total = med([sum(r["passes_ms"].values()) for r in rs if r["passes_ms"]])
        print(f"{case:<10} {tool:<28} total {total:.1f}   {parts}")

    per = overhead(by, "overhead", "Per-event overhead")
    per_map = overhead(by, "maps", "Map-heavy per-event overhead (per-key counting)")
    targets(by, per, per_map)
    return 1 if bad else 0


def overhead(by, case, title):
    """The table of one overhead case; each tool's median ns per event."""
    ov = {t: rs for (c, t), rs in by.items() if c == case}
    per = {}
    if not ov:
        return per
    # Paired within each run (the three are made one after the other),
    # so that a slow spell of the machine falls on all three.
    print(f"\n{title}: the read loop's own time (median); slowdown and"
          " ns/event:\nmedians over the runs of each run's (tool - none) / none"
          " and (tool - none) / reads")
    base = {r["run"]: r["loop"] for r in ov.get("none", []) if r["loop"]}
    print(f"{'probe':<28} {'loop ms':>9} {'slowdown':>9} {'ns/event':>9}"
          f" {'(min-max)':>13} {'counted':>10} {'max RSS':>8}")
    per_run = {}
    for tool, rs in ov.items():
        t = med([r["loop"]["ns"] for r in rs if r["loop"]])
        counted = med([r.get("counted") for r in rs])
        rss = med([r["maxrss_kb"] for r in rs])
        pairs = [(r["loop"]["ns"], base[r["run"]]) for r in rs
                 if r["loop"] and r["run"] in base]
        slow = med([a / b["ns"] for a, b in pairs])
        extras = [(a - b["ns"]) / b["reads"] for a, b in pairs]
        per_run[tool] = {r["run"]: (r["loop"]["ns"] - base[r["run"]]["ns"])
                         / base[r["run"]]["reads"]
                         for r in rs if r["loop"] and r["run"] in base}
        extra = med(extras) if tool != "none" else None
        per[tool] = extra
        spread = (f"{min(extras):.0f}-{max(extras):.0f}"
                  if extras and tool != "none" else "-")
        print(f"{tool:<28} {('-' if t is None else f'{t / 1e6:.1f}'):>9}"
              f" {('-' if slow is None else f'{slow:.2f}'):>9}"
              f" {('-' if extra is None else f'{extra:.1f}'):>9}"
              f" {spread:>13}"
              f" {('-' if counted is None else f'{counted:.0f}'):>10}"
              f" {('-' if tool == 'none' else f'{rss / 1024:.1f}'):>8}")
        per[(tool, "rss")] = rss
    if per.get("bpftrace"):
        for tool, extra in list(per.items()):
            if isinstance(tool, str) and tool.startswith("kscope") and extra is not None:
                b = per_run["bpftrace"]
                k = per_run[tool]
                both = [i for i in k if i in b]
                lower = sum(1 for i in both if k[i] <= b[i])
                print(f"{case} per-event overhead {tool} / bpftrace: "
                      f"{fmt_ratio(extra, per['bpftrace'])}"
                      f" (kscope's the lower in {lower} of {len(both)} runs)")
    return per


def targets(by, per, per_map):
    """The issue's targets, met or not."""
    print("\nTargets")

    def line(ok, text):
        print(f"  [{'met' if ok else 'MISSED'}] {text}")

    for (case, tool), rs in by.items():
        if tool != "kscope" and not tool.startswith("kscope,"):
            continue
        with5 = [sum(r["passes_ms"].values()) for r in rs if "5" in r["passes_ms"]]
        if with5:
            total = med(with5)
            line(total <= 50, f"start to attached <= 50 ms: {case}, {tool}: "
                              f"{total:.1f} ms (Pass 1-5 of -v)")
    kscope_rss = [r["maxrss_kb"] for (c, t), rs in by.items() if t.startswith("kscope")
                  for r in rs if r["maxrss_kb"] is not None]
    if kscope_rss:
        worst = max(kscope_rss) / 1024
        line(worst <= 20, f"kscope's peak RSS <= 20 MB: at most {worst:.1f} MB in any run")
    k, b = per.get("kscope"), per.get("bpftrace")
    if k is not None and b is not None:
        line(k <= b, f"per-event overhead no higher than bpftrace's: "
                     f"{k:.1f} ns vs {b:.1f} ns")
    k, b = per_map.get("kscope"), per_map.get("bpftrace")
    if k is not None and b is not None:
        line(k <= 1.1 * b, f"map-heavy per-event overhead within 10% of bpftrace's: "
                           f"{k:.1f} ns vs {b:.1f} ns")
    k, b = per_map.get(("kscope", "rss")), per_map.get(("bpftrace", "rss"))
    if k is not None and b is not None:
        line(k < b, f"map-heavy peak RSS below bpftrace's: "
                    f"{k / 1024:.1f} MB vs {b / 1024:.1f} MB")


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "run":
        run(sys.argv[2:])
    elif len(sys.argv) == 3 and sys.argv[1] == "report":
        sys.exit(report(sys.argv[2]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
