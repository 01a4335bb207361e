#!/usr/bin/env python3
"""Where xeroguard's Redis CPU per paced call goes (acquire + release), on a redis-server of its own:

  split    one latency run of bench/redis_acquire.c with SLOWLOG at 0 µs: every FCALL acquire sorted by the commands
           it ran (the fast grant: TIME HMGET HSET; the fast grant that recounts the permits: TIME HMGET HMGET HSET;
           anything else: the engine's full path, e.g. a tail flushed to its ring), their share per decision, and the
           releases (HDEL). SLOWLOG adds its own cost to every command: compare shares, not totals, with redis_ops.py.
  stages   copies of the engine library whose acquire returns at a stage of the fast grant (after the FCALL's
           entry, TIME, the HMGET, the envelopes, the checks and floors, the decision), FCALLed on one fixed state:
           what each stage adds (INFO commandstats µs per FCALL; the median over interleaved rounds).
  compare  this checkout's engine against another git revision's (e.g. main), each loaded as a library of its own
           on the same server, each on a state of its own grown alike, in interleaved rounds: acquire + release
           pipelined, INFO commandstats µs per paced call and the server's main-thread CPU, medians over rounds.
           With --instructions the server runs under valgrind (callgrind) and each round counts the instructions
           the whole server ran per paced call (requests, replies, Lua): exact, and the machine's load does not
           move it, so a change of a few percent shows (slow: use --ops 1000 --rounds 4).
  floor    what Redis itself charges before any rule: instructions per call (callgrind) of an FCALL that returns at
           once with the engine's keys and arguments, plus TIME, plus an HMGET and an HSET of small fields, each with
           the release's HDEL, beside PyrateLimiter's whole try_acquire (RedisBucket, two rates) on the same server.

Run:  bench/.venv/bin/python bench/redis_profile.py split|stages|compare|floor [--base REV] [--instructions] [--ops N]
      [--rounds N]
The machine's load moves every figure: use interleaved rounds' medians and compare within one run only.
"""

from __future__ import annotations

import argparse
import collections
import glob
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from benchlib import die
from redis_ops import ROOT, RedisServer, build_c_program, redis_py

ENGINE_DIR = "src/pacing/redis"
TENANT = "bench-tenant"
FAST = ("TIME", "HMGET", "HSET")
FAST_RECOUNT = ("TIME", "HMGET", "HMGET", "HSET")
# Where the stage copies of acquire.lua return: (name, the line the return goes before).
STAGES = (
    ("FCALL entry", "  setup()\n  local op, name = args[1], args[3]"),
    ("+ TIME", "  local hfield, pfield = 'h:' .. name, 'p:' .. op"),
    ("+ HMGET", "  local ae, a, te, h = c[1], c[2], c[3], c[4]"),
    ("+ envelopes", "  local cread, cgen = A_[3], A_[5]"),
    ("+ checks, floors", "  local kexp, akexp = T_[2], A_[8]"),
    ("+ the decision", "  local pids = sub(h, dend + 1)"),
)
EARLY_RETURN = "  do return { args[1], now or 0, 1, 0 } end\n"


def _die(msg: str) -> None:
    die("redis_profile.py", msg, 2)


def loaded_library(admin: Any, name: str) -> str:
    for lib in admin.execute_command("FUNCTION", "LIST", "WITHCODE"):
        fields = dict(zip(lib[::2], lib[1::2]))
        if fields[b"library_name"].decode() == name:
            return str(fields[b"library_code"].decode())
    _die("library %s is not loaded" % name)
    return ""


def this_library(admin: Any, exe: Any, url: str) -> str:
    """The engine library of this checkout as the server holds it (its name: `xeroguard_<hash>`)."""
    subprocess.run([str(exe), "latency", url, "profile-load", "10"], check=True, capture_output=True)
    names = [lib[lib.index(b"library_name") + 1].decode() for lib in admin.execute_command("FUNCTION", "LIST")]
    ours = [n for n in names if n.startswith("xeroguard_")]
    if len(ours) != 1:
        _die("expected one xeroguard library on a fresh server, found %s" % ours)
    return loaded_library(admin, ours[0])


def renamed(code: str, tag: str) -> str:
    """The library under names of its own (library and functions), so that it loads beside the original."""
    name = code.split("\n", 1)[0].split("name=", 1)[1].strip()
    digest = name[len("xeroguard_"):]
    return code.replace(name, "%s_%s" % (name, tag)).replace("xg_%s_" % digest, "xg_%s_%s_" % (digest, tag))


def acquire_function(code: str) -> str:
    return "xg_%s_acquire" % code.split("\n", 1)[0].split("name=xeroguard_", 1)[1].strip()


def tenant_keys(prefix: str) -> List[str]:
    return ["xg:{%s}:cfg" % prefix, "xg:{%s}:2:s" % prefix, "xg:{%s}:2:a" % prefix,
            "xg:{%s}:2:t:%s:m" % (prefix, TENANT), "xg:{%s}:2:t:%s:d" % (prefix, TENANT)]


class Callgrind:
    """A redis-server under callgrind (unix socket in a temp dir), instrumenting only between start() and count()."""

    def __init__(self) -> None:
        if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
            _die("--instructions needs valgrind (Debian: apt-get install -y valgrind)")
        self.dir = Path(tempfile.mkdtemp(prefix="xg-callgrind-"))
        self.socket = self.dir / "redis.sock"
        self.out = self.dir / "callgrind.out"
        self.proc = subprocess.Popen(["valgrind", "--tool=callgrind", "--instr-atstart=no",
                                      "--callgrind-out-file=%s" % self.out, "redis-server", "--port", "0",
                                      "--unixsocket", str(self.socket), "--save", "", "--appendonly", "no"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not self.socket.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                _die("redis-server under valgrind did not start")
            time.sleep(0.2)

    def control(self, *args: str) -> None:
        subprocess.run(["callgrind_control", *args, str(self.proc.pid)], check=True, capture_output=True)

    def start(self) -> None:
        self.control("-z")
        self.control("-i", "on")

    def count(self) -> int:
        """The instructions since start(), from the dump it writes."""
        before = set(glob.glob("%s*" % self.out))
        self.control("-d")
        self.control("-i", "off")
        dump = max(set(glob.glob("%s*" % self.out)) - before, key=os.path.getmtime)
        for line in open(dump):
            if line.startswith("summary:"):
                return int(line.split()[1])
        _die("no summary in %s" % dump)
        return 0

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def main_thread_cpu(admin: Any) -> float:
    cpu = admin.info("cpu")
    return float(cpu["used_cpu_user_main_thread"]) + float(cpu["used_cpu_sys_main_thread"])


def rounds_of(tags: List[str], rounds: int, run: Callable[[str, int], Dict[str, float]]) -> Dict[str, Dict[str, float]]:
    """Each tag once per round, in a rotating order; the median of each figure over the rounds."""
    got: Dict[str, List[Dict[str, float]]] = {t: [] for t in tags}
    for i in range(rounds):
        for tag in tags[i % len(tags):] + tags[:i % len(tags)]:
            got[tag].append(run(tag, i))
    return {t: {k: statistics.median(r[k] for r in rows) for k in rows[0]} for t, rows in got.items()}


def split(admin: Any, exe: Any, url: str, ops: int) -> None:
    admin.config_set("slowlog-max-len", 1_000_000)
    admin.config_set("slowlog-log-slower-than", 0)
    subprocess.run([str(exe), "latency", url, "profile-split", "10"], check=True, capture_output=True)
    admin.slowlog_reset()
    subprocess.run([str(exe), "latency", url, "profile-split", str(ops)], check=True, capture_output=True)
    log = list(reversed(admin.slowlog_get(1_000_000)))
    admin.config_set("slowlog-log-slower-than", 10000)
    # A function's nested commands are logged before it; a release (HDEL) comes alone, between two functions.
    calls, nested, releases = [], [], []
    for entry in log:
        name = entry["command"].split(b" ", 1)[0].decode().upper()
        if name == "FCALL":
            calls.append((entry["duration"], tuple(nested)))
            nested = []
        elif name == "HDEL" and not nested:
            releases.append(entry["duration"])
        elif name == "HMGET" and nested == ["TIME", "HMGET"] and entry["command"].split(b" ")[2].startswith(b"p:"):
            nested.append("HMGET")  # the common grant's recount of the permits (the engine reads cold fields)
        elif name not in ("SLOWLOG", "CONFIG"):
            nested.append(name if name != "HMGET" or len(nested) != 2 else "HMGET (cold)")
    kinds: Dict[str, List[int]] = collections.defaultdict(list)
    engine: Dict[str, List[int]] = collections.defaultdict(list)
    for took, commands in calls:
        kind = {FAST: "fast grant", FAST_RECOUNT: "fast grant, permits recounted"}.get(commands, "engine's path")
        kinds[kind].append(took)
        if kind == "engine's path":
            engine[" ".join(commands)].append(took)
    n = len(calls)
    print("%d acquires (SLOWLOG µs, with its own cost)" % n)
    for kind, took in sorted(kinds.items()):
        print("  %-30s %5.1f %% of calls, mean %6.1f µs, %5.2f µs per decision"
              % (kind, 100 * len(took) / n, sum(took) / len(took), sum(took) / n))
    print("  %-30s %5.2f µs per decision" % ("release (HDEL)", sum(releases) / n))
    for commands, took in sorted(engine.items(), key=lambda kv: -sum(kv[1]))[:5]:
        print("    engine's path, %d x, mean %.1f µs: %s" % (len(took), sum(took) / len(took), commands))


def stages(admin: Any, exe: Any, url: str, ops: int, rounds: int) -> None:
    code = this_library(admin, exe, url)
    functions = {}
    for i, (label, before) in enumerate(STAGES):
        if code.count(before) != 1:
            _die("the stage marker for %r is not in acquire.lua once: update STAGES" % label)
        copy = renamed(code.replace(before, EARLY_RETURN + before), "stage%d" % i)
        admin.execute_command("FUNCTION", "LOAD", "REPLACE", copy)
        functions[label] = acquire_function(copy)
    prefix = "profile-stages"
    subprocess.run([str(exe), "latency", url, prefix, "30"], check=True, capture_output=True)
    keys = tenant_keys(prefix)
    epoch = admin.hget(keys[0], "epoch") or b""

    def run(label: str, i: int) -> Dict[str, float]:
        admin.config_resetstat()
        pipe = admin.pipeline(transaction=False)
        for k in range(ops):
            pipe.execute_command("FCALL", functions[label], 5, *keys, "%d%07d" % (i + 1, k), "", TENANT, 1000, epoch)
        pipe.execute()
        return {"usec": float(admin.info("commandstats")["cmdstat_fcall"]["usec_per_call"])}

    got = rounds_of(list(functions), rounds, run)
    print("the fast grant, stage by stage (µs per FCALL, commandstats; medians of %d rounds of %d)" % (rounds, ops))
    for label, _ in STAGES:
        print("  return after %-18s %6.2f" % (label, got[label]["usec"]))


def compare(admin: Any, exe: Any, url: str, ops: int, rounds: int, base: str,
            callgrind: Optional[Callgrind] = None) -> None:
    code = this_library(admin, exe, url)
    base_code = code
    for path in sorted((ROOT / ENGINE_DIR).glob("*.lua")):
        ours = path.read_text()
        theirs = subprocess.run(["git", "show", "%s:%s/%s" % (base, ENGINE_DIR, path.name)], cwd=ROOT,
                                capture_output=True, text=True, check=True).stdout
        if ours != theirs:
            if base_code.count(ours) != 1:
                _die("%s is not in the loaded library once" % path.name)
            base_code = base_code.replace(ours, theirs)
    functions = {}
    for tag, source in (("base", base_code), ("this", code)):
        copy = renamed(source, tag)
        admin.execute_command("FUNCTION", "LOAD", "REPLACE", copy)
        functions[tag] = acquire_function(copy)
        subprocess.run([str(exe), "latency", url, "profile-" + tag, "20"], check=True, capture_output=True)
        # The program stored the limits (the config hash, which every layout reads alike) and grew state in this
        # checkout's layout: the copy under test grows its own.
        admin.delete(*tenant_keys("profile-" + tag)[1:])
    ids = iter(range(1, 1 << 62))

    def run(tag: str, _: int) -> Dict[str, float]:
        keys = tenant_keys("profile-" + tag)
        epoch = admin.hget(keys[0], "epoch") or b""
        admin.config_resetstat()
        cpu = main_thread_cpu(admin)
        if callgrind:
            callgrind.start()
        for start in range(0, ops, 50):
            pipe = admin.pipeline(transaction=False)
            for _ in range(start, min(start + 50, ops)):
                op = str(next(ids))
                pipe.execute_command("FCALL", functions[tag], 5, *keys, op, "", TENANT, 1000, epoch)
                pipe.hdel(keys[1], "p:" + op)
            if any(reply[2] != 1 for reply in pipe.execute()[::2]):
                _die("a call was refused: the limits should admit every call")
        instructions = callgrind.count() / ops if callgrind else 0.0
        stats = admin.info("commandstats")
        usec = stats["cmdstat_fcall"]["usec"] + stats["cmdstat_hdel"]["usec"]
        return {"usec": usec / ops, "cpu": (main_thread_cpu(admin) - cpu) * 1e6 / ops, "instructions": instructions}

    got = rounds_of(["base", "this"], rounds, run)
    print("acquire + release, per paced call (medians of %d interleaved rounds of %d)" % (rounds, ops))
    for tag, label in (("base", base), ("this", "this checkout")):
        if callgrind:
            print("  %-16s %9.0f instructions (callgrind)" % (label, got[tag]["instructions"]))
        else:
            print("  %-16s commandstats %6.2f µs   main-thread CPU %6.2f µs" % (label, got[tag]["usec"], got[tag]["cpu"]))


# Functions with the engine's shape and none of its rules: what the common grant's commands cost by themselves.
FLOOR_LIBRARY = """#!lua name=xg_floor
redis.register_function('xg_floor_return', function(keys, args) return { args[1], 0, 1, 0 } end)
redis.register_function('xg_floor_time', function(keys, args)
  local t = redis.call('TIME')
  return { args[1], t[1] * 1000 + math.floor(t[2] / 1000), 1, 0 }
end)
redis.register_function('xg_floor_commands', function(keys, args)
  local t = redis.call('TIME')
  local now = t[1] * 1000 + math.floor(t[2] / 1000)
  local c = redis.call('HMGET', keys[2], 'e', 'a', 'e:' .. args[3], 'h:' .. args[3])
  redis.call('HSET', keys[2], 'p:' .. args[1], struct.pack('>d', now + 120000), 'a', 'abcd', 'h:' .. args[3], 'abcdefgh')
  return { args[1], now, 1, now + 120000 }
end)
"""


def floor(callgrind: Callgrind, ops: int) -> None:
    admin = redis_py.Redis(unix_socket_path=str(callgrind.socket))
    admin.execute_command("FUNCTION", "LOAD", "REPLACE", FLOOR_LIBRARY)
    keys = tenant_keys("floor")
    ids = iter(range(10**15, 10**16))

    def count(send: Callable[[Any], None]) -> float:
        def run(n: int) -> None:
            for start in range(0, n, 50):
                pipe = admin.pipeline(transaction=False)
                for _ in range(start, min(start + 50, n)):
                    send(pipe)
                pipe.execute()
        run(ops // 10 + 1)
        callgrind.start()
        run(ops)
        return callgrind.count() / ops

    def paced(function: str) -> Callable[[Any], None]:
        def send(pipe: Any) -> None:
            op = str(next(ids))
            pipe.execute_command("FCALL", function, 5, *keys, op, "", TENANT, 1000, "8130638225587310")
            pipe.hdel(keys[1], "p:" + op)
        return send

    from pyrate_limiter import Duration, Limiter, Rate, RedisBucket

    bucket = RedisBucket.init([Rate(10**6, Duration.MINUTE), Rate(10**7, Duration.DAY)], admin, "floor-pyrate")
    limiter = Limiter(bucket)
    print("instructions per call (callgrind, %d calls each)" % ops)
    for label, function in (("FCALL returning at once + HDEL", "xg_floor_return"),
                            ("  + TIME", "xg_floor_time"),
                            ("  + HMGET, HSET (small fields)", "xg_floor_commands")):
        print("  %-38s %8.0f" % (label, count(paced(function))), flush=True)
    print("  %-38s %8.0f" % ("PyrateLimiter try_acquire", count(lambda _: limiter.try_acquire(TENANT))), flush=True)
    admin.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=("split", "stages", "compare", "floor"))
    p.add_argument("--base", default="main", help="compare: the git revision to compare with (default main)")
    p.add_argument("--instructions", action="store_true",
                   help="compare: count the server's instructions under callgrind (needs valgrind)")
    p.add_argument("--ops", type=int, default=3000, help="calls per run or round (default 3000)")
    p.add_argument("--rounds", type=int, default=12, help="interleaved rounds (default 12)")
    a = p.parse_args()
    callgrind = Callgrind() if a.instructions or a.mode == "floor" else None
    server = RedisServer(tcp=True)
    try:
        if callgrind:
            url = "unix://%s" % callgrind.socket
            admin = redis_py.Redis(unix_socket_path=str(callgrind.socket))
        else:
            server.start()
            url = "redis://127.0.0.1:%d" % server.port
            admin = redis_py.Redis(host="127.0.0.1", port=server.port)
        if a.mode == "floor":
            assert callgrind is not None
            floor(callgrind, a.ops)
            return 0
        work = ROOT / "target" / "bench-redis"
        work.mkdir(parents=True, exist_ok=True)
        exe = build_c_program(work)
        if a.mode == "split":
            split(admin, exe, url, a.ops)
        elif a.mode == "stages":
            stages(admin, exe, url, a.ops, a.rounds)
        else:
            compare(admin, exe, url, a.ops, a.rounds, a.base, callgrind)
        admin.close()
    except RuntimeError as exc:
        _die(str(exc))
    finally:
        server.stop()
        if callgrind:
            callgrind.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
