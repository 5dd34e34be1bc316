"""Is the per-packet path white?  `python -m bench.nogil_annotation`

Reads the HTML that ``cython -a`` wrote next to each part of the fast path
(``TAPSWITCH_ANNOTATE=1 python setup.py build_ext --inplace``; Cython writes it when it
compiles, so ``touch fastpath/_core.pyx`` first if nothing changed) and lists every line
inside a ``nogil`` function that Cython marks as touching Python (score > 0), with the
function it is in.  A white per-packet path prints nothing but the count of the lines
it looked at; exit status 1 when a line is listed.  ``--ignore NAME`` leaves a function
out (one that takes the GIL on purpose, like vnet.pxi's test helper _collect_segment).
"""
import argparse
import glob
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINE = re.compile(r'<pre class="cython line score-(\d+)"[^>]*>\+?<span class="">(\d+)</span>')
DEF = re.compile(r"^(\s*)cdef\b[^=]*?\b(\w+)\(")


def nogil_functions(lines):
    """{line number: function name} for the body lines of the nogil cdef functions."""
    body, k = {}, 0
    while k < len(lines):
        m = DEF.match(lines[k])
        if not m:
            k += 1
            continue
        header, end = lines[k], k
        while not header.rstrip().endswith(":") and end + 1 < len(lines):
            end += 1
            header += lines[end]
        k = end + 1
        if "nogil" not in header:
            continue
        indent = len(m.group(1))
        while k < len(lines) and (not lines[k].strip() or len(lines[k]) - len(lines[k].lstrip()) > indent):
            body[k + 1] = m.group(2)
            k += 1
    return body


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ignore", action="append", default=["_collect_segment"])
    args = parser.parse_args(argv)
    pages = sorted(glob.glob(os.path.join(ROOT, "fastpath", "*.html")))
    if not pages:
        raise SystemExit("no annotation: run TAPSWITCH_ANNOTATE=1 python setup.py build_ext --inplace")
    looked, grey = 0, []
    for page in pages:
        source = page[:-5] + ".pxi"
        if not os.path.exists(source):
            continue
        with open(source) as f:
            body = nogil_functions(f.read().splitlines())
        with open(page) as f:
            scores = {int(n): int(s) for s, n in LINE.findall(f.read())}
        for n, function in sorted(body.items()):
            if n in scores and function not in args.ignore:
                looked += 1
                if scores[n]:
                    grey.append(f"{os.path.basename(source)}:{n} ({function}) score {scores[n]}")
    print("\n".join(grey + [f"{looked} lines of nogil functions looked at, {len(grey)} not white"]))
    return 1 if grey else 0


if __name__ == "__main__":
    sys.exit(main())
