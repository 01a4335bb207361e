#!/usr/bin/env python3
"""Writes BENCHMARKS.md from one run's results: criterion estimates (target/criterion), and the JSON files the
benchmark scripts left in --results. Called by scripts/bench.sh; never edit BENCHMARKS.md by hand."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

ROOT = Path(__file__).resolve().parent.parent
CRITERION = ROOT / "target" / "criterion"

# (row label, criterion id of xeroguard's row, criterion id of the anchor, anchor label)
CLASSIFY_ROWS = [
    ("1 KB JSON 400, validation errors", "classify/json_400_1kb/xeroguard", "classify/json_400_1kb/serde_json_value", "`serde_json::from_slice::<Value>`"),
    ("1 MB JSON 200 batch, no errors", "classify/json_200_1mb_clean/xeroguard", "classify/json_200_1mb_clean/serde_json_value", "`serde_json::from_slice::<Value>`"),
    ("1 MB JSON 200 batch, error in the last element", "classify/json_200_1mb_error_last/xeroguard", "classify/json_200_1mb_error_last/serde_json_value", "`serde_json::from_slice::<Value>`"),
    ("XML 400, validation errors (fixture)", "classify/xml_400/xeroguard", "classify/xml_400/quick_xml_events", "quick-xml reading every event"),
    ("headers-only 429 (4 rate-limit headers)", "classify/headers_only_429/xeroguard", "classify/headers_only_429/serde_json_value", "`Value` parse of the same headers as JSON"),
]
PACING_ROWS = [
    (f"{tenants} tenant{'s' if tenants != '1' else ''}, {threads} thread{'s' if threads != 1 else ''}",
     f"acquire_release/xeroguard/{tenants.replace(',', '')}_tenants/{threads}_threads",
     f"acquire_release/governor_keyed/{tenants.replace(',', '')}_tenants/{threads}_threads")
    for tenants in ("1", "10,000") for threads in (1, 2)
]


# Why xeroguard is slower than its anchor, printed under a table only for the rows where it was slower in this run.
WHY_SLOWER = {
    "classify/json_400_1kb/xeroguard": "it parses the body with serde_json as the anchor does (into its own flat "
        "tree of borrowed strings, in document order), then walks the tree for the ApiException fields and copies "
        "every message, warning and failed element into owned strings; the anchor stops after parsing.",
    "classify/json_200_1mb_error_last/xeroguard": "the scan finds an error indicator, so the whole body is parsed "
        "like the anchor's, after the scan and followed by the walk over every element.",
    "classify/xml_400/xeroguard": "the anchor only reads the events; classify reads the same events and collects "
        "messages, element indexes and the error number as it goes.",
    "acquire_release": "each acquire checks four exact constraints (tenant minute and day windows, tenant "
        "concurrency, app minute window), records the call in three sorted windows and hands out a permit that "
        "release gives back; governor's check is one GCRA compare-and-swap with nothing to give back. With two "
        "threads every call also takes the app-wide lock (the app window is shared by all tenants), which has no "
        "counterpart in governor.",
    "python_limiter": "xeroguard's row is two ctypes calls (acquire, then release), each converting arguments and "
        "checking a status, against one pure-Python call that, with limits never reached, appends to a list.",
    "python_classify": "on top of parsing the body in the library, the binding joins the headers into one "
        "buffer, makes the ctypes call and builds a frozen Classification with enums from the struct it fills; "
        "reading a text field first fetches the library's JSON form and parses it (the '.validation_messages' "
        "row); json.loads only parses.",
    "node_classify": "V8's JSON.parse is native code as fast as the library's parse; on top of the library's work "
        "(the same parse, then the walk that collects the ApiException fields), the binding joins the headers into one "
        "buffer, makes the koffi call and reads the struct it fills into a Classification with words for codes; "
        "reading a text field first fetches the library's JSON form and parses it (the '.validationMessages' row).",
    "redis_decision": "a xeroguard decision is a paced call: the acquire checks and records every window "
        "(tenant minute and day, app minute), the blocks and the permit lease at once, on the server's clock (TIME), "
        "and the release gives the permit back (an HDEL); limits' two scripts each push to one list, pyrate's one "
        "script counts and adds to one sorted set with the caller's clock, and neither has permits, blocks or an app "
        "window. The common acquire is decided off small envelopes and hot fields (one HMGET, one HSET); what "
        "Redis itself charges for a function call, TIME, those two commands and the HDEL is most of it: 67,000 "
        "instructions before any rule against 85,000 for PyrateLimiter's whole try_acquire, and about 120,000 for "
        "a paced call (`bench/redis_profile.py floor` and `compare --instructions`, under callgrind). From run to "
        "run on one VM every figure moves (the per-round figures are in redis-ops.json).",
}


def criterion_estimates() -> Dict[str, Dict[str, float]]:
    """full_id -> {median, low, high} in ns, from criterion's latest run."""
    found: Dict[str, Dict[str, float]] = {}
    for meta in CRITERION.glob("*/*/new/benchmark.json"):
        full_id = json.loads(meta.read_text())["full_id"]
        median = json.loads((meta.parent / "estimates.json").read_text())["median"]
        found[full_id] = {"median": median["point_estimate"], "low": median["confidence_interval"]["lower_bound"],
                          "high": median["confidence_interval"]["upper_bound"]}
    return found


def duration(ns: float) -> str:
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def ratio(ours: float, anchor: float) -> str:
    """How xeroguard compares, worded so nobody has to work out which way the ratio goes."""
    if ours <= anchor:
        return f"{anchor / ours:.2f}x faster"
    return f"{ours / anchor:.2f}x slower"


def size_ratio(ours: float, anchor: float) -> str:
    if ours <= anchor:
        return f"{anchor / ours:.1f}x smaller"
    return f"{ours / anchor:.1f}x larger"


def command(*argv: str) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine(load_before: str) -> List[str]:
    cpu = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")), cpu)
    mem_kb = next((int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")), 0) if Path("/proc/meminfo").exists() else 0
    os_name = platform.platform()
    os_release = Path("/etc/os-release")
    if os_release.exists():
        os_name = next((line.split("=", 1)[1].strip('"') for line in os_release.read_text().splitlines() if line.startswith("PRETTY_NAME=")), os_name)
    return [
        f"- CPU: {cpu}, {os.cpu_count()} logical cores; memory {mem_kb / 1024 / 1024:.0f} GiB",
        f"- OS: {os_name}, kernel {platform.release()}",
        f"- {command('rustc', '--version')}; Python {platform.python_version()}",
        f"- load average before the run (1/5/15 min): {load_before}",
    ]


def table(header: List[str], rows: List[List[Any]]) -> List[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def load(results: Path, name: str) -> Optional[Dict[str, Any]]:
    path = results / name
    return json.loads(path.read_text()) if path.exists() else None


def required(results: Path, name: str) -> Dict[str, Any]:
    """A result file the section cannot do without: render.py stops, naming it, when it is missing."""
    data = load(results, name)
    if data is None:
        sys.exit(f"render.py: {results / name} missing")
    return data


def rust_section(results: Path) -> List[str]:
    est = criterion_estimates()
    missing = [i for _, ours, anchor, *_ in CLASSIFY_ROWS + PACING_ROWS for i in (ours, anchor) if i not in est]
    if missing:
        sys.exit(f"render.py: criterion results missing (run cargo bench first): {', '.join(missing)}")
    out = ["## Rust (criterion): classify", "",
           "Median time per call, 95 % confidence interval in brackets; anchor measured in the same run.", ""]
    out += table(["case", "xeroguard `classify`", "anchor", "anchor time", "xeroguard vs anchor"],
                 [[label, f"{duration(est[o]['median'])} [{duration(est[o]['low'])}–{duration(est[o]['high'])}]", name,
                   duration(est[a]["median"]), ratio(est[o]["median"], est[a]["median"])] for label, o, a, name in CLASSIFY_ROWS])
    out += why([(label, WHY_SLOWER.get(o)) for label, o, a, _ in CLASSIFY_ROWS if est[o]["median"] > est[a]["median"]])
    out += ["", "## Rust (criterion): acquire + release", "",
            "xeroguard: `acquire` + `release` on the exact four-window limiter (tenant minute, tenant day, tenant "
            "concurrency, app minute), manual clock. Anchor: `governor` keyed limiter (`Quota::per_minute(60)`), "
            "`check_key`. Time per operation.", ""]
    out += table(["tenants, threads", "xeroguard", "governor keyed", "xeroguard vs governor"],
                 [[label, duration(est[o]["median"]), duration(est[a]["median"]), ratio(est[o]["median"], est[a]["median"])]
                  for label, o, a in PACING_ROWS])
    if any(est[o]["median"] > est[a]["median"] for _, o, a in PACING_ROWS):
        out += why([("acquire + release", WHY_SLOWER["acquire_release"])])
    memory = load(results, "memory.json")
    if memory:
        out += ["", f"Memory (counting global allocator in the bench): **{memory['active_tenant_bytes']:,} heap bytes per "
                f"active tenant** holding a full {memory['day_window_calls']:,}-call day window; "
                f"**{memory['idle_tenant_bytes']:.0f} bytes per idle tenant** once evicted (mean over {memory['tenants']} tenants)."]
    return out


def exactness_section(results: Path) -> List[str]:
    rows: List[Dict[str, Any]] = []
    for name in ("exactness-rust.json", "exactness-python.json"):
        data = required(results, name)
        rows += data["rows"]
    spec = json.loads((ROOT / "bench" / "schedules.json").read_text())
    out = ["## Window exactness", "",
           "Every limiter configured for 60 calls per 60 s and 5000 per 24 h on one tenant, driven under virtual time by "
           "the same schedules (`bench/schedules.json`); the table shows the most calls admitted in any rolling "
           "(half-open) 60 s and 24 h window. Anything above 60 or 5000 is a 429 from Xero.", ""]
    for schedule in spec["schedules"]:
        out += [f"**{schedule['name']}**: {schedule['description']}.", ""]
        out += table(["limiter", "strategy", "max in 60 s", "max in 24 h", "calls admitted", "configuration"],
                     [[r["limiter"], r["strategy"], mark(r["max_60s"], 60), mark(r["max_24h"], 5000), f"{r['admitted']:,}", r.get("note", "")]
                      for r in rows if r["schedule"] == schedule["name"]])
        out.append("")
    return out


def python_section(results: Path) -> List[str]:
    data = required(results, "python-ops.json")
    out = ["## Python (ctypes binding) beside `limits` and PyrateLimiter", "",
           f"CPython {data['python']}; each figure is the {data['statistic']} of several timed trials. Every limiter "
           "is configured with the same two windows and limits so high that every call is granted, so each row is "
           "the cost of one granted decision.", ""]
    rows = data["limiter_rows"]
    ours = {r["scenario"]: r for r in rows if r["limiter"].startswith("xeroguard")}
    out += table(["tenants", "limiter", "API", "ops/s", "µs per op", "xeroguard vs this"],
                 [[r["scenario"], r["limiter"], r["api"], f"{r['ops_per_s']:,}", f"{r['us_per_op']:.2f}",
                   "—" if r["limiter"].startswith("xeroguard") else ratio(ours[r["scenario"]]["us_per_op"], r["us_per_op"])]
                  for r in rows])
    if any(not r["limiter"].startswith("xeroguard") and r["us_per_op"] < ours[r["scenario"]]["us_per_op"] for r in rows):
        out += why([("where a peer is faster", WHY_SLOWER["python_limiter"])])
    out += ["", "`classify` through the binding (the headers joined into one buffer, the native call, the struct "
            "it fills read into a `Classification`), beside `json.loads` of the same body:", ""]
    out += table(["case", "xeroguard.classify", "json.loads", "xeroguard vs json.loads"],
                 [[r["case"], f"{r['classify_us']:.1f} µs", f"{r['json_loads_us']:.1f} µs" if r.get("json_loads_us") else "—",
                   ratio(r["classify_us"], r["json_loads_us"]) if r.get("json_loads_us") else "—"]
                  for r in data["classify_rows"]])
    if any(r.get("json_loads_us") and r["classify_us"] > r["json_loads_us"] for r in data["classify_rows"]):
        out += why([("classify in Python", WHY_SLOWER["python_classify"])])
    out += ["", "Notes from the run:", ""] + [f"- {note}" for note in data.get("notes", [])]
    return out


def node_section(results: Path) -> List[str]:
    data = required(results, "node-ops.json")
    out = ["## Node.js (koffi binding)", "",
           f"Node {data['node']}, koffi {data['koffi']}, measured {data.get('date', 'with the rest')}; each figure is "
           f"the {data['statistic']} of several timed "
           "trials. `classify` through the binding beside `JSON.parse` of the same body (decoded from bytes, as a "
           "response arrives):", ""]
    out += table(["case", "classify", "JSON.parse", "classify vs JSON.parse"],
                 [[r["case"], f"{r['classify_us']:.1f} µs",
                   f"{r['json_parse_us']:.1f} µs" if r.get("json_parse_us") else "—",
                   ratio(r["classify_us"], r["json_parse_us"]) if r.get("json_parse_us") else "—"]
                  for r in data["classify_rows"]])
    if any(r.get("json_parse_us") and r["classify_us"] > r["json_parse_us"] for r in data["classify_rows"]):
        out += why([("classify in Node", WHY_SLOWER["node_classify"])])
    out += ["", "`acquire` + `release` on a limiter of this process, each awaited (every call granted):", ""]
    out += table(["tenants", "API", "ops/s", "µs per op"],
                 [[r["scenario"], r["api"], f"{r['ops_per_s']:,}", f"{r['us_per_op']:.2f}"]
                  for r in data["limiter_rows"]])
    out += ["", "Notes from the run:", ""] + [f"- {note}" for note in data.get("notes", [])]
    return out


def redis_section(results: Path) -> List[str]:
    data = required(results, "redis-ops.json")
    out = ["## Shared limiters on one Redis: latency, Redis CPU, memory", "",
           f"Redis {data['redis']} over {data['transport']}, started by the run; every limiter on the same server in "
           f"the same run, {data['ops']:,} timed decisions each (CPython {data['python']} for the Python rows)"
           + (f", in {data['rounds']} rounds that take the contenders in turn (each figure is the median over the "
              "rounds, so a change in the machine's load weighs on all alike)" if data.get("rounds", 1) > 1 else "")
           + ". "
           "A xeroguard decision is a paced call: acquire, then release. Latency is one decision's round trips from "
           "the caller's side; Redis CPU is what `INFO commandstats` counts for every command the client sent "
           "(reset before each), per decision, and beside it the server process's CPU (`INFO cpu`), which also "
           "counts reading requests and writing replies.", ""]
    rows = data["latency"]
    c_row = next((r for r in rows if r["key"] == "xeroguard-c"), None)
    out += table(["limiter", "API", "p50", "p99", "decisions/s", "commands per decision", "µs per command",
                  "Redis µs per decision (commandstats)", "Redis process µs per decision"],
                 [[r["limiter"], r["api"], f"{r['p50_us']:.0f} µs", f"{r['p99_us']:.0f} µs", f"{r['ops_per_s']:,}",
                   f"{r['commands_per_decision']:.2f}",
                   ", ".join(f"{name.upper().replace('|', ' ')} {v:.1f}"
                             for name, v in sorted(r["usec_per_command"].items(), key=lambda kv: -kv[1])) or "—",
                   f"{r['redis_usec_per_decision']:.1f}", f"{r['process_cpu_usec_per_decision']:.1f}"] for r in rows])
    py_row = next((r for r in rows if r["key"] == "xeroguard-python"), None)
    if c_row and py_row:
        out += ["", f"The Python binding's share: {py_row['p50_us'] - c_row['p50_us']:.0f} µs of the "
                f"{py_row['p50_us']:.0f} µs median (the same decisions from C take {c_row['p50_us']:.0f} µs)."]
    peers = [r for r in rows if not r["key"].startswith("xeroguard")]
    ours_rows = [r for r in (c_row, py_row) if r]
    if any(p["redis_usec_per_decision"] < o["redis_usec_per_decision"] for p in peers for o in ours_rows):
        out += why([("Redis CPU per decision", WHY_SLOWER["redis_decision"])])
    memory = data["memory"]
    ours = next((m for m in memory if m["limiter"].startswith("xeroguard")), None)
    out += ["", f"Memory per active tenant at a full day window ({data['day_calls']:,} calls in 24 h, Xero's 60 a "
            "minute too), retry bookkeeping included: `MEMORY USAGE key SAMPLES 0` over the tenant's state.", ""]
    out += table(["limiter", "stored as", "bytes per active tenant", "xeroguard vs this"],
                 [[m["limiter"], m["format"], f"{m['tenant_bytes']:,}",
                   "—" if m is ours or ours is None else size_ratio(ours["tenant_bytes"], m["tenant_bytes"])]
                  for m in memory])
    if ours is not None:
        out += ["", "xeroguard's tenant: " + ", ".join(f"`{k}` {v:,} B" for k, v in sorted(ours["tenant_keys"].items()))
                + ". Once per app (every tenant shares them): "
                + ", ".join(f"`{k}` {v:,} B" for k, v in sorted(ours["app_keys"].items())) + "."]
    reserve = data.get("reserve")
    if reserve:
        out += ["", f"xeroguard booking ahead (`reserve`, Xero's limits: 60 a minute, so the 2,000th booking is "
                f"{reserve['last_booking_ahead_min']:g} minutes ahead): the reserve that finds so many calls booked "
                "before it (medians of it and the 9 before it; the last row: 10 reserves the cap of 2,000 bookings "
                "refuses). Redis: the server's time (SLOWLOG) and the caller's; in process: the caller's. With the "
                "clock still the bookings come in bursts of 60 at one instant; with the clock moving a millisecond "
                "after each reserve they come one after another, each a window after the one 60 before it, a chain "
                "the search passes a call at a time (the costlier case)."]
        for label, res in (("clock still", reserve), ("clock moving 1 ms after each reserve",
                                                      data.get("reserve_moving"))):
            if not res:
                continue
            out += ["", f"{label.capitalize()}:", ""]
            out += table(["calls booked ahead", "Redis, server", "Redis, caller", "in process"],
                         [[f"{r['booked_ahead']:,}" if isinstance(r["booked_ahead"], int) else r["booked_ahead"],
                           f"{r['redis_server_us']:.0f} µs", f"{r['redis_client_us']:.0f} µs",
                           f"{r['in_process_us']:.1f} µs"] for r in res["rows"]])
            p99 = res.get("redis_server_p99_us")
            out += ["", f"The slowest reserve on the server: {res['redis_server_max_us']:,} µs"
                    + (f" (99th percentile: {p99:,} µs; SLOWLOG counts wall time, so on a shared VM the slowest can "
                       "include time the server was not running)." if p99 is not None else ".")]
    waits = data.get("waits")
    if waits:
        out += ["", "Waiting for a concurrency slot on a shared store: 100 threads in 4 processes want one tenant's 5 "
                "slots, each holding one 50 ms.", ""]
        out += table(["waiting", "Redis scripts per second", "grants per second", "Redis CPU (commandstats)",
                      "Redis process CPU"],
                     [[w["waiting"], f"{w['scripts_per_s']:,}", f"{w['grants_per_s']:,}",
                       f"{w['redis_cpu_percent']:.1f} %", f"{w['process_cpu_percent']:.1f} %"] for w in waits])
    alt = data.get("blob_alternative")
    if alt:
        out += ["", "The engine's other possible form, measured for the choice (the Lua engine mirrors the Rust one): "
                "the client decides over the tenant's and the app's state read as blobs (20 KB and 40 KB at Xero's "
                f"limits) and writes them back with a compare-and-set script: {alt['round_trips']} round trips, "
                f"{alt['bytes_moved']:,} bytes moved, Redis {alt['redis_usec_per_decision']:.1f} µs per decision "
                f"(commandstats; process {alt['process_cpu_usec_per_decision']:.1f} µs), p50 {alt['p50_us']:.0f} µs "
                "for the store's part alone, with one writer (every process of an app would contend on the app's "
                "blob). A Redis module in Rust would be one engine too, but managed Redis services do not load "
                "modules."]
    out += ["", "Notes from the run:", ""] + [f"- {note}" for note in data.get("notes", [])]
    return out


def efficiency_section(results: Path, chart: str) -> List[str]:
    data = required(results, "efficiency.json")
    cfg, theory = data["config"], data["theoretical"]
    scale = 60_000 / cfg["minute_ms"]
    out = ["## Pacing efficiency against the local Xero-like server", "",
           f"`tests/server/xero_like_server.py` enforces Xero's limits the way Xero does (fixed windows, a random "
           f"phase per tenant, {cfg['concurrency']} in flight), time-scaled: one minute lasts {cfg['minute_ms']} ms. "
           f"{cfg['tenants']} tenants, {cfg['workers']} worker threads each, {cfg['minutes']} scaled minutes per client, "
           f"a workload of {cfg['workload_per_tenant']:,} calls per tenant (more than the limits allow), "
           f"{cfg['latency_ms']:g} ms server latency. The most a client can complete is {theory['fixed_window_max']:,} "
           f"calls ({theory['fixed_windows_overlapped']} fixed windows per tenant overlap the run); the most it can complete "
           f"without ever exceeding {cfg['minute_limit']} calls in a rolling minute, which is what a 429-free client on "
           f"a rolling-window server must do, is {theory['rolling_ceiling']:,}. Latency is the time from \"the worker wants "
           f"to call\" to \"the request is sent\" (real ms; closed-loop workers with more work than allowed, so it is "
           f"mostly queueing for the next window).", ""]
    header = ["client", "completed per scaled minute", "% of max", "% of rolling ceiling", "429s received",
              "most 2xx in a rolling minute (one tenant)", "added latency p50 / p99"]

    def row(c: Dict[str, Any]) -> List[Any]:
        problems = ", ".join(f"{k} {v}" for k, v in sorted(c["count_429_by_problem"].items()))
        return [c["client"], f"{c['completed_per_scaled_minute']:.1f}", f"{c['pct_of_fixed_window_max']:.1f} %",
                f"{c['pct_of_rolling_ceiling']:.1f} %", f"**{c['count_429']}**" + (f" ({problems})" if problems else ""),
                mark(c["max_2xx_sent_in_rolling_minute_any_tenant"], cfg["minute_limit"]),
                f"{c['latency_p50']['ms']:.0f} ms / {c['latency_p99']['ms']:.0f} ms"]
    out += table(header, [row(c) for c in data["clients"]])
    out += ["", f"Two processes sharing the same {cfg['tenants']} tenants, each with its own in-process xeroguard "
            f"limiter ({cfg['proc_workers']} workers per tenant each; no header tells a process about the other's "
            "calls in flight, so each takes 2 of the 5 concurrency slots), with and without feeding every response "
            "to `observe` (the remaining-calls headers):", ""]
    out += table(header, [row(c) for c in data["two_processes"]])
    if "shared_redis" not in data:
        sys.exit("render.py: efficiency.json has no shared_redis rows (rerun bench/efficiency.py)")
    out += ["", f"Two and four processes sharing one limiter through one Redis ({data['shared_redis_setup']}):", ""]
    out += table(header, [row(c) for c in data["shared_redis"]])
    out += ["", "Reading it: where a client that overshoots completes more of the fixed-window maximum than "
            "xeroguard, it does so only by using the partial windows at both ends of the run, which takes up to twice "
            "the limit in one rolling minute: against a server that counts rolling windows (or any other phase) "
            "those calls are 429s, and even here they earn 429s at every window edge. xeroguard's figure to compare "
            "is its share of the rolling ceiling. Feedback between processes cuts 429s but cannot reach zero: the "
            "remaining-calls headers arrive after the fact, and \"0 remaining\" says the server's fixed window is "
            "full, not when it turns, so a process can free slots (its own old calls leaving its rolling window) "
            "before the server's window resets. A limiter shared through Redis decides every process's calls in one "
            "place, on one clock, so no feedback has to catch up."]
    out += ["", f"![calls per rolling minute for each client against the limit]({chart})", "",
            f"Run took {data['elapsed_s']:.0f} s ({scale:.0f}x time scale)."]
    return out


def why(reasons: List[Any]) -> List[str]:
    reasons = [(label, text) for label, text in reasons if text]
    return ["", "Where xeroguard is slower, and why:", ""] + [f"- {label}: {text}" for label, text in reasons] if reasons else []


def mark(value: int, limit: int) -> str:
    return f"**{value:,}** (over)" if value > limit else f"{value:,}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--results", type=Path, required=True)
    parser.add_argument("--load-before", default="unknown")
    parser.add_argument("--chart", default="benchmarks-efficiency.png", help="the chart's path relative to BENCHMARKS.md")
    parser.add_argument("--quick", action="store_true", help="smoke run: write into --results, not BENCHMARKS.md")
    args = parser.parse_args()
    today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = ["# Benchmarks", "",
             "Generated by `scripts/bench.sh` (do not edit by hand; rerun it). One run, one machine:", ""]
    lines += [f"- date: {today}"] + machine(args.load_before) + [""]
    lines += rust_section(args.results) + [""]
    lines += exactness_section(args.results) + [""]
    lines += python_section(args.results) + [""]
    lines += node_section(args.results) + [""]
    lines += redis_section(args.results) + [""]
    lines += efficiency_section(args.results, args.chart)
    target = args.results / "BENCHMARKS.md" if args.quick else ROOT / "BENCHMARKS.md"
    target.write_text("\n".join(lines).rstrip() + "\n")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
