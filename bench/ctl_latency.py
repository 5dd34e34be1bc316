"""How long a `tapswitch ctl` call takes, from exec to exit, and how much of it is the
interpreter, the imports and the round trip.  Target: under 50 ms for a call (issue 16).

    python -m bench.ctl_latency                 # 30 calls per verb
    python -m bench.ctl_latency --runs 100 --json out.json

A control server over a small model (``tests``' tenants shape: no daemon, no root) serves
on a socket in a temporary directory, in a child process; each sample is one
``sys.executable -m pyctl ctl --socket S VERB`` run to its end.  Alongside, on the same
machine in the same run (read the ratios on a shared machine): the bare interpreter
(``python -c pass``, with the site packages), the import of ``pyctl.cli`` and the parser's
construction measured inside a child, and the modules a call loads (numpy and the compiled
core must not be among them).
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


def _env():
    return dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))


def _timed(argv) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=_env())
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{argv} failed: {done.stderr.strip()}")
    return elapsed * 1e3


def _summary(samples: list[float]) -> dict:
    ordered = sorted(samples)
    return {"median_ms": round(statistics.median(ordered), 2),
            "p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))], 2),
            "min_ms": round(ordered[0], 2), "runs": len(ordered)}


def measure(runs: int, verbs: list[str]) -> dict:
    with tempfile.TemporaryDirectory(prefix="tsw-ctl-bench-") as tmp:
        path = os.path.join(tmp, "control.sock")
        server = subprocess.Popen([sys.executable, "-c", SERVER, path], stdout=subprocess.PIPE,
                                  text=True, env=_env())
        try:
            if server.stdout.readline().strip() != "ready":
                raise RuntimeError("the control server did not start")
            out = {"interpreter": _summary([_timed([sys.executable, "-c", "pass"])
                                            for _ in range(runs)])}
            inside = [subprocess.run([sys.executable, "-c", INSIDE], capture_output=True, text=True,
                                     env=_env(), check=True).stdout.split() for _ in range(runs)]
            out["import_pyctl_cli"] = _summary([float(i[0]) for i in inside])
            out["build_parser"] = _summary([float(i[1]) for i in inside])
            out["heavy_modules_loaded"] = sorted({m for i in inside for m in i[2].split(",")} - {"-"})
            for verb in verbs:
                argv = [sys.executable, "-m", "pyctl", "ctl", "--socket", path, *verb.split()]
                _timed(argv)                    # warm the page cache
                out[f"ctl {verb}"] = _summary([_timed(argv) for _ in range(runs)])
        finally:
            server.terminate()
            server.wait(10)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--verbs", default="ping,namespaces,addresses tenants --tagged",
                   help="comma-separated ctl commands to time")
    p.add_argument("--json", help="also write the figures here")
    args = p.parse_args(argv)
    result = measure(args.runs, [v.strip() for v in args.verbs.split(",") if v.strip()])
    print(f"{'what':32} {'median ms':>10} {'p90 ms':>8} {'min ms':>8}")
    for key, value in result.items():
        if isinstance(value, dict):
            print(f"{key:32} {value['median_ms']:>10.1f} {value['p90_ms']:>8.1f} {value['min_ms']:>8.1f}")
    print(f"heavy modules a call loads: {', '.join(result['heavy_modules_loaded']) or 'none'}")
    print("target: a ctl call under 50 ms (compare with the interpreter line: its own start-up)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
