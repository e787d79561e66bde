#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""devmm trace run and explain (cli/trace_run.c, cli/trace_cmd.c) on small traces, scenario style: each
case is a trace, a command line and the exact figures expected of --json,
worked out by hand from the execution model (docs/trace-format.md §4) and
the pascal-pcie3 timing (docs/managed-memory.md §5): a batch costs 11.6 us
per block + 0.22 us per page, a transfer max(1.7 us, 0.72 us + B/12.2 GB/s),
a CPU fault 11.6 us. Every run has --check (both validators after every
service).

    trace_run_test.py DEVMM
"""
import json
import os
import subprocess
import sys
import tempfile

DEVMM = sys.argv[1]
TMP = tempfile.mkdtemp()
FAILS = []

BATCH1 = 11600 + 220 + 1700  # one fault, one page: 13520 ns
CPU_FAULT = 11600 + 1700  # 13300 ns


def run(args, trace=None, name="t.trace", stdin=None):
    path = os.path.join(TMP, name)
    if trace is not None:
        with open(path, "w") as f:
            f.write(trace)
    p = subprocess.run([DEVMM, "trace"] + [a.replace("@T", path).replace("@D", TMP) for a in args],
                       capture_output=True, text=True, input=stdin, timeout=120)
    return p, path


def figures(trace, *extra):
    out = os.path.join(TMP, "out.json")
    if os.path.exists(out):
        os.unlink(out)
    p, _ = run(["run", "@T", "--check", "--json", out] + list(extra), trace)
    if p.returncode != 0:
        raise AssertionError("exit %d: %s" % (p.returncode, p.stderr))
    with open(out) as f:
        return json.load(f), p


def expect(case, got, want, path=""):
    """Every key of want must be in got with that value (dicts: recursively)."""
    if isinstance(want, dict):
        for k, v in want.items():
            if k not in got:
                FAILS.append("%s: %s%s missing" % (case, path, k))
            else:
                expect(case, got[k], v, path + k + ".")
    elif got != want:
        FAILS.append("%s: %s = %r, expected %r" % (case, path.rstrip("."), got, want))


def case(fn):
    try:
        fn()
    except AssertionError as e:
        FAILS.append("%s: %s" % (fn.__name__, e))
    return fn


NAMES = ["far_faults", "cpu_faults", "batches", "per_batch_htod_bytes", "duplicates", "throttled",
         "migrations", "prefetch", "thrashing", "read_dup", "remote", "sim_time_ns",
         "sim_time_breakdown", "host_time_ns", "host_peak_rss_bytes", "policy", "params", "timing"]
CAUSES = ["fault", "prefetch", "eviction", "advice", "user_prefetch", "coherence",
          "access_counter", "thrash_pin", "read_dup_invalidate"]


def only_fault(n):
    return {c: (n if c == "fault" else 0) for c in CAUSES}


@case
def one_stream_one_page_per_batch():
    # One stream: each access stalls it, no device stream can run, so each
    # fault is a batch of its own.
    t = "ALLOC a 0x200000000 32768\n" + "".join(
        "gpu0 R 0x%x 4096\n" % (0x200000000 + i * 4096) for i in range(8)) + "FREE 0x200000000\n"
    j, p = figures(t)
    if list(j) != NAMES:
        FAILS.append("names: %r" % list(j))
    expect("one_stream", j, {
        "far_faults": 8, "cpu_faults": 0, "batches": 8, "per_batch_htod_bytes": [4096] * 8,
        "duplicates": 0, "throttled": 0,
        "migrations": {"htod_pages": 8, "dtoh_pages": 0, "htod_bytes": 32768, "dtoh_bytes": 0,
                       "by_cause": only_fault(8)},
        "prefetch": {"pages": 0, "useful_pages": 0},
        "thrashing": {"pages_detected": 0, "throttles": 0, "pins": 0, "unpins": 0},
        "read_dup": {"copies": 0, "invalidations": 0}, "remote": {"maps": 0, "accesses": 0},
        "sim_time_ns": 8 * BATCH1,
        "sim_time_breakdown": {"compute": 0, "fault_stall": 8 * BATCH1, "transfer": 8 * 1700,
                               "throttle": 0},
        "policy": "ondemand", "timing": "pascal-pcie3",
        "params": {"fault_batch_count": 256, "fault_replay_policy": 2},
    })
    if not (j["host_time_ns"] > 0 and j["host_peak_rss_bytes"] > 0):
        FAILS.append("host figures: %r %r" % (j["host_time_ns"], j["host_peak_rss_bytes"]))
    if "far faults 8, cpu faults 0, batches 8" not in p.stdout:
        FAILS.append("one_stream: summary: %s" % p.stdout)


@case
def two_streams_one_batch():
    # Both streams stall: one batch of two faults, one run of two pages.
    t = "ALLOC a 0x200000000 8192\ngpu0 R 0x200000000 4 s=0\ngpu0 W 0x200001000 4 s=1\n"
    j, _ = figures(t)
    expect("two_streams", j, {"far_faults": 2, "batches": 1, "per_batch_htod_bytes": [8192],
                              "sim_time_ns": 11600 + 2 * 220 + 1700})


@case
def access_spanning_pages():
    # One record over three pages (unaligned): the three faults go together.
    t = "ALLOC a 0x200000000 16384\ngpu0 W 0x200000800 9000\n"
    j, _ = figures(t)
    expect("spanning", j, {"far_faults": 3, "batches": 1, "per_batch_htod_bytes": [12288],
                           "migrations": {"by_cause": only_fault(3)}})


@case
def cpu_fault_after_gpu():
    # The device writes the page, SYNC, the CPU reads it: a CPU fault through
    # the core brings it back (docs/managed-memory.md §6's example).
    t = "ALLOC a 0x200000000 4096\ngpu0 W 0x200000000 8\nSYNC\ncpu R 0x200000000 8\n"
    j, _ = figures(t)
    expect("cpu_fault", j, {"far_faults": 1, "cpu_faults": 1, "batches": 1,
                            "migrations": {"htod_pages": 1, "dtoh_pages": 1, "htod_bytes": 4096,
                                           "dtoh_bytes": 4096, "by_cause": only_fault(2)},
                            "sim_time_ns": BATCH1 + CPU_FAULT})


@case
def clocks_sync_and_kernel_end():
    # KERNEL_END: the kernel's streams end with its last one (s=0 at 5000);
    # s=1 then faults at 5000. SYNC: every stream waits for the CPU's 30000.
    t = ("ALLOC a 0x200000000 8192\nKERNEL_BEGIN 1\ngpu0 COMPUTE 5000 s=0\ngpu0 COMPUTE 1000 s=1\n"
         "KERNEL_END 1\ngpu0 R 0x200000000 4 s=1\ncpu COMPUTE 30000\nSYNC\ngpu0 R 0x200001000 4 s=0\n")
    j, _ = figures(t)
    expect("clocks", j, {"far_faults": 2, "batches": 2, "sim_time_ns": 30000 + BATCH1,
                         "sim_time_breakdown": {"compute": 36000, "fault_stall": 2 * BATCH1}})


@case
def earliest_clock_first():
    # s=1 is below s=0 in the file but earlier in time: it faults first (at
    # 0, fault 1), then s=0 after its compute (fault 2); a device stream
    # could run until then, so both go in one batch, which starts at the
    # later fault.
    t = ("ALLOC a 0x200000000 8192\ngpu0 COMPUTE 100000 s=0\ngpu0 R 0x200000000 4 s=0\n"
         "gpu0 R 0x200001000 4 s=1\n")
    events = os.path.join(TMP, "ev.jsonl")
    j, _ = figures(t, "--events", events)
    expect("earliest", j, {"batches": 1, "sim_time_ns": 100000 + 11600 + 2 * 220 + 1700,
                           "sim_time_breakdown": {"fault_stall": 2 * (11600 + 2 * 220 + 1700) + 100000}})
    with open(events) as f:
        ev = [json.loads(line) for line in f]
    faults = {e["addr"]: e["fault"] for e in ev if e["ev"] == "fault"}
    if faults != {0x200001000: 1, 0x200000000: 2}:
        FAILS.append("earliest: fault ids %r" % faults)
    migrations = [e for e in ev if e["ev"] == "migrate"]
    if len(migrations) != 2 or any(e["cause"] != "fault" for e in migrations):
        FAILS.append("earliest: migrations %r" % migrations)


@case
def user_prefetch():
    # PREFETCH brings the four pages in one transfer of 16 KiB (0.72 us +
    # 16384 B / 12.2 GB/s = 2062 ns) without a fault; gpu0's stream (which
    # appears after it) starts at its end and hits. Back to the CPU from
    # then: 8 KiB, 1.7 us; the CPU's stream waits for it.
    t = ("ALLOC a 0x200000000 16384\nPREFETCH 0x200000000 16384 gpu0\n" +
         "".join("gpu0 R 0x%x 4\n" % (0x200000000 + i * 4096) for i in range(4)) +
         "PREFETCH 0x200000000 8192 cpu\ncpu R 0x200000000 8192\n")
    j, _ = figures(t)
    causes = {c: 0 for c in CAUSES}
    causes["user_prefetch"] = 6
    expect("user_prefetch", j, {"far_faults": 0, "cpu_faults": 0, "batches": 0,
                                "migrations": {"htod_pages": 4, "dtoh_pages": 2, "by_cause": causes},
                                "prefetch": {"pages": 0},
                                "sim_time_ns": 2062 + 1700})


# managed-memory.md §1.3's worked example: touches of the 64 KiB big pages
# 0, 1, 2, 4, 8 and 16 of a 2 MiB allocation, one stream, so one fault per
# batch.
WORKED = "ALLOC a 0x200000000 2097152\n" + "".join(
    "gpu0 R 0x%x 4\n" % (0x200000000 + b * 65536) for b in (0, 1, 2, 4, 8, 16))


@case
def worked_example_ondemand():
    # ondemand moves the faulted 4 KiB page only.
    j, _ = figures(WORKED)
    expect("worked/ondemand", j, {"far_faults": 6, "batches": 6, "per_batch_htod_bytes": [4096] * 6,
                                  "prefetch": {"pages": 0, "useful_pages": 0}})


@case
def worked_example_uvm():
    # Under uvm the tree prefetcher grows each fault: the big page, then the
    # smallest tree node above the threshold (§1.3).
    j, _ = figures(WORKED, "--policy", "uvm")
    expect("worked/uvm", j, {"far_faults": 6, "batches": 6, "policy": "uvm",
                             "per_batch_htod_bytes": [65536, 65536, 131072, 262144, 524288, 1048576]})


def pingpong_trace(period, rounds=100):
    """The CPU and gpu0 write the same 64 pages in turn, concurrently (no
    SYNC): each side touches every page, then computes 2 x period; the CPU
    starts a period late, so the pages change hands about every period. The
    sides run free: a GPU round costs its batch (11.6 us + 0.22 us per page,
    prefetched pages included), a CPU round its faults, so their phases
    drift by about 14 us a round and the gaps do not stay at period."""
    out = ["ALLOC shared 0x200000000 262144", "cpu COMPUTE %d" % period]
    for _ in range(rounds):
        for proc in ("gpu0", "cpu"):
            out += ["%s W 0x%x 4" % (proc, 0x200000000 + i * 4096) for i in range(64)]
            out.append("%s COMPUTE %d" % (proc, 2 * period))
    return "\n".join(out) + "\n"


def turns_trace(period, rounds=100):
    """gpu0 and the CPU write the same 64 pages in turns separated by SYNC:
    a turn touches every page and computes period, so a page changes hands
    every period plus a turn's fault time, whatever the fault costs."""
    out = ["ALLOC shared 0x200000000 262144"]
    for _ in range(rounds):
        for proc in ("gpu0", "cpu"):
            out += ["%s W 0x%x 4" % (proc, 0x200000000 + i * 4096) for i in range(64)]
            out += ["%s COMPUTE %d" % (proc, period), "SYNC"]
    return "\n".join(out) + "\n"


def moved(j):
    return j["migrations"]["htod_pages"] + j["migrations"]["dtoh_pages"]


@case
def thrashing_uvm():
    # §1.4: pages changing hands every 100 us are detected and throttled,
    # and move far less than with thrashing_enable=0; every 1 ms (beyond
    # the 500 us lapse) nothing is detected or throttled. The 1 ms case
    # takes turns with SYNC: free-running sides drift into each other
    # (pingpong_trace) and would hand pages over within the lapse late in
    # the run, which UVM then rightly throttles.
    fast, _ = figures(pingpong_trace(100000), "--policy", "uvm")
    off, _ = figures(pingpong_trace(100000), "--policy", "uvm", "--set", "thrashing_enable=0")
    slow, _ = figures(turns_trace(1000000), "--policy", "uvm")
    t = fast["thrashing"]
    if not (t["pages_detected"] > 0 and t["throttles"] > 0 and fast["throttled"] > 0 and
            fast["sim_time_breakdown"]["throttle"] > 0):
        FAILS.append("thrashing 100us: %r, throttled %d" % (t, fast["throttled"]))
    if not moved(fast) * 2 < moved(off):
        FAILS.append("thrashing: %d pages moved, %d with thrashing off" % (moved(fast), moved(off)))
    none = {"throttled": 0, "thrashing": {"pages_detected": 0, "throttles": 0, "pins": 0, "unpins": 0},
            "sim_time_breakdown": {"throttle": 0}}
    expect("thrashing off", off, dict(none, params={"thrashing_enable": 0}))
    expect("thrashing 1ms", slow, none)
    # Without throttling, every round moves every page both ways.
    if moved(off) != moved(slow) or moved(slow) != 2 * 64 * 100:
        FAILS.append("thrashing: moved off %d, 1 ms %d" % (moved(off), moved(slow)))


@case
def free_forgets_pages():
    # FREE unmaps: a new allocation at the same place starts unpopulated and
    # faults again.
    t = ("ALLOC a 0x200000000 4096\ngpu0 W 0x200000000 4\nFREE 0x200000000\n"
         "ALLOC b 0x200000000 4096\ngpu0 R 0x200000000 4\nFREE 0x200000000\n")
    j, _ = figures(t)
    expect("free", j, {"far_faults": 2, "batches": 2, "migrations": {"htod_pages": 2, "dtoh_pages": 0}})


@case
def generated_streaming():
    # §3.1 streaming under ondemand: every page faults once, every
    # migration is a FAULT one.
    p, path = run(["gen", "streaming", "--bytes", "1048576", "--streams", "4", "--seed", "5"])
    with open(os.path.join(TMP, "s.trace"), "w") as f:
        f.write(p.stdout)
    j, _ = figures(p.stdout, "--seed", "5")
    expect("streaming", j, {"far_faults": 256, "cpu_faults": 0, "batches": 64,
                            "migrations": {"htod_pages": 256, "htod_bytes": 1048576,
                                           "by_cause": only_fault(256)}})
    if j["per_batch_htod_bytes"] != [16384] * 64:
        FAILS.append("streaming: per batch %r" % j["per_batch_htod_bytes"][:8])
    # Deterministic: the same run gives the same figures (host ones aside).
    k, _ = figures(p.stdout, "--seed", "5")
    for d in (j, k):
        del d["host_time_ns"], d["host_peak_rss_bytes"]
    if j != k:
        FAILS.append("streaming: two runs differ")


@case
def set_and_device_options():
    t = "ALLOC a 0x200000000 8192\ngpu0 R 0x200000000 4 s=0\ngpu0 R 0x200001000 4 s=1\n"
    j, p = figures(t, "--set", "fault_batch_count=1", "--device", "gpu0:pages=16")
    # Both stall; the service takes one fault per batch.
    expect("set", j, {"batches": 2, "per_batch_htod_bytes": [4096, 4096],
                      "params": {"fault_batch_count": 1}})
    if "gpu0 16 pages" not in p.stdout:
        FAILS.append("set: summary %s" % p.stdout)


@case
def bad_input():
    # Bad lines are reported as FILE:LINE:COL and nothing runs (exit 1).
    out = os.path.join(TMP, "bad.json")
    t = "ALLOC a 0x200000000 4096\ngpu0 R 0x200000000 4\ngpu0 R 0x300000000 4\ncpu X 1 1\n"
    p, path = run(["run", "@T", "--json", out], t, name="bad.trace")
    if p.returncode != 1 or os.path.exists(out):
        FAILS.append("bad: exit %d, json written %s" % (p.returncode, os.path.exists(out)))
    if "%s:3:8: gpu0 R at 0x300000000: outside every live allocation" % path not in p.stderr:
        FAILS.append("bad: stderr %r" % p.stderr)
    if "%s:4:5: " % path not in p.stderr:
        FAILS.append("bad: line 4: %r" % p.stderr)
    for args, why in ((["--policy", "nosuch"], "unknown policy 'nosuch'"),
                      (["--set", "nosuch=1"], "--set nosuch: no such tunable"),
                      (["--set", "fault_batch_count=0"], "out of range"),
                      (["--timing", "pcie9"], "unknown timing"),
                      (["--device", "gpu0"], "expected gpuN:pages=N"),
                      (["--bogus", "1"], "unknown option")):
        p, _ = run(["run", "@T"] + args, "ALLOC a 0x200000000 4096\n")
        if p.returncode != 2 or why not in p.stderr:
            FAILS.append("bad %r: exit %d, %r" % (args, p.returncode, p.stderr))
    p, _ = run(["run", os.path.join(TMP, "missing.trace")])
    if p.returncode != 2 or "cannot read" not in p.stderr:
        FAILS.append("missing file: exit %d, %r" % (p.returncode, p.stderr))


@case
def device_full():
    # One device page for an access that needs two at once: the engine
    # cannot make progress (it does not evict); the run says so and ends.
    t = "ALLOC a 0x200000000 8192\ngpu0 R 0x200000000 8192\n"
    try:
        p, path = run(["run", "@T", "--device", "gpu0:pages=1"], t, name="full.trace")
    except subprocess.TimeoutExpired:
        FAILS.append("device full: the run never ended")
        return
    if p.returncode != 2 or "%s:2: gpu0: the engine makes no progress" % path not in p.stderr:
        FAILS.append("device full: exit %d, %r" % (p.returncode, p.stderr))


@case
def stdin_and_several_files():
    t = "ALLOC a 0x200000000 4096\ngpu0 R 0x200000000 4\n"
    p, _ = run(["run", "-", "--json", "-"], stdin=t)
    try:
        far = json.loads(p.stdout)["far_faults"]  # the JSON alone on stdout
    except ValueError:
        far = None
    if p.returncode or far != 1 or "far faults 1," not in p.stderr:
        FAILS.append("stdin: %d %r %r" % (p.returncode, p.stdout, p.stderr))
    with open(os.path.join(TMP, "one.trace"), "w") as f:
        f.write(t)
    out = os.path.join(TMP, "two.json")
    p, _ = run(["run", "@D/one.trace", "@D/one.trace", "--json", out])
    with open(out) as f:
        j = json.load(f)
    if p.returncode or not isinstance(j, list) or [x["far_faults"] for x in j] != [1, 1]:
        FAILS.append("two files: %r" % j)


@case
def explain_one_page():
    # Pages 0 and 1 fault together (one batch: 11.6 us + 2 x 0.22 us, then
    # one 8 KiB transfer of 1.7 us); after the SYNC the CPU reads page 0
    # back (11.6 us + 1.7 us); FREE unmaps both pages.
    t = ("ALLOC a 0x200000000 8192\ngpu0 W 0x200000000 8\ngpu0 R 0x200001000 8 s=1\nSYNC\n"
         "cpu R 0x200000010 8\nFREE 0x200000000\n")
    p, path = run(["explain", "@T", "0x200000010", "--check"], t, name="e.trace")
    want = ("page 0x200000000 in %s (policy ondemand, timing pascal-pcie3): 5 events\n"
            "      t (ns)  event     what, origin\n"
            "           0  fault     gpu0 write, batch 1 fault 1 rule 0\n"
            "       12040  migrate   nowhere -> gpu0, cause fault, batch 1 fault 1 rule 1, until 13740\n"
            "       13740  cpu_fault cpu read (page on gpu0), batch 0 fault 3 rule 0\n"
            "       25340  migrate   gpu0 -> cpu, cause fault, batch 0 fault 3 rule 1, until 27040\n"
            "       27040  unmap     2 pages from 0x200000000\n" % path)
    if p.returncode or p.stdout != want:
        FAILS.append("explain: exit %d\n%s\nexpected\n%s%s" % (p.returncode, p.stdout, want, p.stderr))
    # Page 1: its fault (fault 2) and migration, and the unmap.
    p, _ = run(["explain", "@T", "0x200001fff"], t, name="e.trace")
    lines = p.stdout.splitlines()
    if p.returncode or len(lines) != 5 or "gpu0 read, batch 1 fault 2 rule 0" not in lines[2]:
        FAILS.append("explain page 1: %r" % p.stdout)
    for args in (["explain", "@T"], ["explain", "@T", "0x12q"], ["explain", "@T", "1", "--json", "x"]):
        p, _ = run(args, t, name="e.trace")
        if p.returncode != 2:
            FAILS.append("explain %r: exit %d" % (args, p.returncode))


for f in FAILS:
    print("FAIL:", f)
print("trace-run: %s" % ("FAILED" if FAILS else "passed"))
sys.exit(1 if FAILS else 0)
