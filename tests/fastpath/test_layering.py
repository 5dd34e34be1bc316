"""The fast path is the bottom layer: nothing under fastpath/ imports pyctl, and its
plain modules (errors, reasons, verdicts, addresses) load without the compiled core or
numpy, so `tapswitch ctl` stays lean.  The core's names still come from `fastpath`, and a
missing build says how to build."""
import ast
import os
import re
import pathlib
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FASTPATH = os.path.join(ROOT, "fastpath")


def run_python(code):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.parametrize("module", ["fastpath.errors", "fastpath.reasons", "fastpath.verdicts",
                                    "fastpath.addresses", "pyctl.errors"])
def test_the_plain_modules_load_neither_the_core_nor_numpy(module):
    out = run_python(f"import sys, {module}; "
                     "print(sorted(m for m in ('fastpath._core', 'numpy') if m in sys.modules))")
    assert out == "[]"


def test_the_core_is_loaded_on_first_use():
    out = run_python("import sys, fastpath; before = 'fastpath._core' in sys.modules; "
                     "from fastpath import Datapath, verdicts; "
                     "print(before, 'fastpath._core' in sys.modules, fastpath.Datapath is Datapath, "
                     "fastpath.PacketLoop.__name__, 'Batch' in dir(fastpath))")
    assert out == "False True True PacketLoop True"


def test_a_missing_build_says_how_to_build():
    code = ("import sys\n"
            "class NoCore:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name == 'fastpath._core':\n"
            "            raise ImportError('no _core here')\n"
            "sys.meta_path.insert(0, NoCore())\n"
            "import fastpath, fastpath.errors\n"
            "try:\n"
            "    fastpath.Datapath\n"
            "except ImportError as exc:\n"
            "    print(exc)\n")
    out = run_python(code)
    assert "is not built in" in out and "python setup.py build_ext --inplace" in out


def test_another_trees_core_is_not_taken(tmp_path):
    # A source tree without its build, where another copy's core is found (an installed
    # tapswitch's import hook): refused, not mixed in.
    import shutil
    import fastpath
    here = pathlib.Path(fastpath.__file__).parent
    copy = tmp_path / "fastpath"
    shutil.copytree(here, copy, ignore=shutil.ignore_patterns("*.so", "__pycache__", "*.c"))
    code = ("import importlib.util, sys\n"
            f"spec = importlib.util.spec_from_file_location('fastpath', {str(copy / '__init__.py')!r}, "
            f"submodule_search_locations=[{str(copy)!r}, {str(here)!r}])\n"
            "fp = importlib.util.module_from_spec(spec); sys.modules['fastpath'] = fp\n"
            "spec.loader.exec_module(fp)\n"
            "try:\n    fp.Datapath\nexcept ImportError as exc:\n    print(type(exc).__name__, exc)\n")
    out = run_python(code)
    assert out.startswith("CoreNotBuilt") and f"not built in {copy}" in out
    assert "belongs to another copy of tapswitch" in out


def test_unknown_names_are_attribute_errors():
    import fastpath
    with pytest.raises(AttributeError):
        getattr(fastpath, "no_such_name")


def _imports(path):
    """The modules a fast-path source file imports or cimports."""
    with open(path) as f:
        text = f.read()
    if path.endswith(".py"):
        found = []
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Import):
                found += [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                found.append(node.module)
        return found
    return re.findall(r"^\s*(?:from\s+([\w.]+)\s+c?import|c?import\s+([\w.]+))", text, re.MULTILINE)


def test_nothing_under_fastpath_imports_pyctl():
    offenders = []
    for dirpath, _, files in os.walk(FASTPATH):
        for name in files:
            if name.endswith((".py", ".pyx", ".pxi", ".pxd")):
                path = os.path.join(dirpath, name)
                for found in _imports(path):
                    modules = found if isinstance(found, tuple) else (found,)
                    if any(m.split(".")[0] == "pyctl" for m in modules if m):
                        offenders.append(os.path.relpath(path, ROOT))
    assert offenders == []
    assert _imports(os.path.join(FASTPATH, "addresses.py"))          # the scan sees imports


def test_pyctl_errors_are_the_fast_paths():
    import fastpath.errors
    import pyctl.errors
    names = ["TapswitchError", "NotFound", "AlreadyExists", "AddressInUse", "PermissionDenied",
             "InvalidArgument", "Busy", "NotSupported", "QuotaExceeded", "TableFull", "from_code"]
    assert sorted(pyctl.errors.__all__) == sorted(names)
    assert all(getattr(pyctl.errors, n) is getattr(fastpath.errors, n) for n in names)
