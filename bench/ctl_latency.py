"""How long a `tapswitch ctl` call takes, from exec to exit, and how much of it is the
interpreter, the imports and the round trip.  Target: under 50 ms for a call (issue 16).

    python -m bench.ctl_latency                 # 30 calls per verb
    python -m bench.ctl_latency --runs 100 --json out.json
    python -m bench.ctl_latency --tree /path/to/old/tree --tree .     # before / after

A control server over a small model (``tests``' tenants shape: no daemon, no root) serves
on a socket in a temporary directory, in a child process; each sample is one
``sys.executable -m pyctl ctl --socket S VERB`` run to its end.  Alongside, on the same
machine in the same run (read the ratios on a shared machine): the interpreter's own floor
(``python -S -c pass``: no site packages; ``python -c pass``: with this machine's site
packages and their ``.pth`` hooks), the import of ``pyctl.cli`` and the parser's
construction measured inside a child, and the modules a call loads (numpy and the compiled
core must not be among them).  With several ``--tree``s (source trees of tapswitch, each
put first on PYTHONPATH) every sample round takes one sample of each tree in turn, so a
change of the machine's load falls on all of them alike.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SERVER = """
import sys
from pyctl.control.server import ControlServer
from pyctl.model.switch import Switch
sw = Switch()
sw.create("tenants", "l2"); sw.address_add("tenants", "10.1.0.1/24")
for k in range(20):
    sw.create(f"t{k}", "l3", parent="tenants"); sw.assign_and_push(f"10.1.0.{10 + k}/24", f"t{k}")
server = ControlServer(sw, sys.argv[1])
print("ready", flush=True)
server.serve_forever(0.2)
"""

INSIDE = """
import sys, time
t0 = time.perf_counter()
import pyctl.cli
t1 = time.perf_counter()
pyctl.cli._parser()
t2 = time.perf_counter()
heavy = [m for m in ("numpy", "fastpath._core") if m in sys.modules]
print(f"{(t1 - t0) * 1e3:.3f} {(t2 - t1) * 1e3:.3f} {','.join(heavy) or '-'}")
"""


# Bytecode: an installed tapswitch has its modules compiled (pip does it at install).  The
# children write and read theirs under this run's own cache prefix (the trees stay clean),
# also where the environment says PYTHONDONTWRITEBYTECODE: without caches every call would
# compile each module it imports from source again (--no-bytecode measures that).
_PYCACHE = {"prefix": None}


def _env(tree=REPO):
    env = dict(os.environ, PYTHONPATH=tree + os.pathsep + os.environ.get("PYTHONPATH", ""))
    if _PYCACHE["prefix"] is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = _PYCACHE["prefix"]
    return env


def _timed(argv, tree=REPO) -> float:
    """Milliseconds of ``argv`` run to its end in ``tree`` (its directory too: ``-c`` and
    ``-m`` put the working directory before PYTHONPATH)."""
    t0 = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=_env(tree), cwd=tree)
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{argv} failed: {done.stderr.strip()}")
    return elapsed * 1e3


def _summary(samples: list[float]) -> dict:
    ordered = sorted(samples)
    return {"median_ms": round(statistics.median(ordered), 2),
            "p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))], 2),
            "min_ms": round(ordered[0], 2), "runs": len(ordered)}


def _alternating(runs: int, items: list, sample) -> list[list]:
    """``runs`` rounds of ``sample(item)`` for each item in turn: the samples per item."""
    out = [[] for _ in items]
    for _ in range(runs):
        for k, item in enumerate(items):
            out[k].append(sample(item))
    return out


def measure(runs: int, verbs: list[str], trees: list[str] = (REPO,), bytecode=True) -> dict:
    trees = [os.path.abspath(t) for t in trees]
    names = [""] if len(trees) == 1 else [f" [{t}]" for t in trees]
    with tempfile.TemporaryDirectory(prefix="tsw-ctl-bench-") as tmp:
        _PYCACHE["prefix"] = os.path.join(tmp, "pycache") if bytecode else None
        path = os.path.join(tmp, "control.sock")
        server = subprocess.Popen([sys.executable, "-c", SERVER, path], stdout=subprocess.PIPE,
                                  text=True, env=_env())
        try:
            if server.stdout.readline().strip() != "ready":
                raise RuntimeError("the control server did not start")
            floors = {"interpreter -S (no site)": [sys.executable, "-S", "-c", "pass"],
                      "interpreter (site)": [sys.executable, "-c", "pass"]}
            for argv in floors.values():
                _timed(argv)                            # its bytecode cached
            out = {name: _summary(samples) for name, samples
                   in zip(floors, _alternating(runs, list(floors.values()), _timed))}
            for tree in trees:
                _timed([sys.executable, "-c", INSIDE], tree)
            inside = _alternating(runs, trees, lambda tree: subprocess.run(
                [sys.executable, "-c", INSIDE], capture_output=True, text=True, env=_env(tree),
                cwd=tree, check=True).stdout.split())
            for name, samples in zip(names, inside):
                out[f"import_pyctl_cli{name}"] = _summary([float(i[0]) for i in samples])
                out[f"build_parser{name}"] = _summary([float(i[1]) for i in samples])
                out[f"heavy_modules_loaded{name}"] = sorted(
                    {m for i in samples for m in i[2].split(",")} - {"-"})
            # each verb; the first also without the site packages' start-up hooks (-S: ctl
            # needs nothing installed, PYTHONPATH finds tapswitch), beside the floor's -S line
            runs_of = [(verb, "", []) for verb in verbs] + [(verbs[0], " (-S)", ["-S"])]
            for verb, label, flags in runs_of:
                argv = [sys.executable, *flags, "-m", "pyctl", "ctl", "--socket", path,
                        *verb.split()]
                for tree in trees:
                    _timed(argv, tree)                  # warm the page and bytecode caches
                calls = _alternating(runs, trees, lambda tree: _timed(argv, tree))
                for name, samples in zip(names, calls):
                    out[f"ctl {verb}{label}{name}"] = _summary(samples)
        finally:
            server.terminate()
            server.wait(10)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--verbs", default="ping,namespaces,addresses tenants --tagged",
                   help="comma-separated ctl commands to time")
    p.add_argument("--tree", action="append", dest="trees", metavar="DIR",
                   help="a source tree of tapswitch to time (repeat it to compare trees, "
                        "sampled in turn; default: this one)")
    p.add_argument("--no-bytecode", action="store_true",
                   help="no bytecode caches: every call compiles what it imports (what "
                        "PYTHONDONTWRITEBYTECODE=1 with no caches written makes of it)")
    p.add_argument("--json", help="also write the figures here")
    args = p.parse_args(argv)
    result = measure(args.runs, [v.strip() for v in args.verbs.split(",") if v.strip()],
                     args.trees or [REPO], bytecode=not args.no_bytecode)
    width = max(len(key) for key in result) + 2
    print(f"{'what':{width}} {'median ms':>10} {'p90 ms':>8} {'min ms':>8}")
    for key, value in result.items():
        if isinstance(value, dict):
            print(f"{key:{width}} {value['median_ms']:>10.1f} {value['p90_ms']:>8.1f} "
                  f"{value['min_ms']:>8.1f}")
    for key, value in result.items():
        if key.startswith("heavy_modules_loaded"):
            print(f"heavy modules a call loads{key[len('heavy_modules_loaded'):]}: "
                  f"{', '.join(value) or 'none'}")
    print("target: a ctl call under 50 ms (compare with the interpreter lines: its own start-up)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
