"""The command line around the verbs: --version, shell completion with and without
argcomplete, a `ctl` call that loads neither numpy nor the compiled core (nor hypothesis,
argcomplete, dataclasses and inspect, nor the model or the daemon), errors that name
the missing capability, the demo's refusal without privileges."""
import os
import subprocess
import sys

import pytest

from pyctl.cli import _LOG_FORMATS, _LOG_LEVELS, main
from pyctl.control.verb_table import VERBS
from pyctl.ops import logsetup
from tests.support import REPO

SETPRIV = "/usr/bin/setpriv"


def python(code_or_args, *, env=None, prefix=(), **kwargs):
    args = ["-c", code_or_args] if isinstance(code_or_args, str) else list(code_or_args)
    env = dict(os.environ, PYTHONPATH=str(REPO), **(env or {}))
    return subprocess.run([*prefix, sys.executable, *args], capture_output=True, text=True,
                          timeout=60, env=env, **kwargs)


def test_version(capsys):
    assert main(["--version"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("tapswitch ") and out.endswith(" (control protocol 1)\n")


def test_version_from_the_shell():
    done = python(["-m", "pyctl", "--version"])
    assert done.returncode == 0 and done.stdout.startswith("tapswitch ")


def test_the_logging_choices_are_logsetups():
    assert (_LOG_LEVELS, _LOG_FORMATS) == (logsetup.LEVELS, logsetup.FORMATS)


LEAN = """
import sys
from pyctl.cli import main
code = main(sys.argv[1:])
heavy = sorted(m for m in sys.modules if m in ("numpy", "fastpath._core", "hypothesis",
                                               "argcomplete", "dataclasses", "inspect")
               or m.startswith(("pyctl.model", "pyctl.daemon", "pyctl.compile", "pyctl.kernel",
                                "pyroute2", "logging")))
print("HEAVY", heavy, code)
"""


@pytest.mark.parametrize("argv", [["ping"], ["namespaces"], ["show", "web"], ["counters"],
                                  ["counters", "--format", "prometheus"], ["version"]])
def test_a_ctl_call_loads_neither_numpy_nor_the_core(served, argv):
    served.server.dispatcher.register(VERBS["counters"], _counters, replace=True)
    done = python(["-c", LEAN, "ctl", "--socket", served.path, *argv])
    last = done.stdout.strip().splitlines()[-1]
    assert last == "HEAVY [] 0", done.stdout + done.stderr


def _counters(session, namespace=None, port=None, format=None):
    if format == "prometheus":
        return "# HELP tapswitch_x a metric\n# TYPE tapswitch_x gauge\ntapswitch_x 1\n"
    traffic = {"rx_packets": 1, "rx_bytes": 60, "tx_packets": 2, "tx_bytes": 120}
    return {"namespaces": {"web": {**traffic, "reasons": {"spoofed_source": 1, "arp": 2}}},
            "ports": {"tsw-web": {"namespace": "web", **traffic}},
            "reasons": {"spoofed_source": 1, "arp": 2}, "groups": {}}


def _complete(line, env=None):
    out = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"tapswitch-complete-{os.getpid()}")
    done = python(["-m", "pyctl"], env={"_ARGCOMPLETE": "1", "COMP_LINE": line,
                                        "COMP_POINT": str(len(line)), "_ARGCOMPLETE_IFS": "\n",
                                        "_ARGCOMPLETE_STDOUT_FILENAME": out, **(env or {})})
    try:
        with open(out) as f:
            return done, f.read().split("\n")
    except FileNotFoundError:
        return done, None
    finally:
        if os.path.exists(out):
            os.unlink(out)


def test_completion_of_commands_verbs_and_names_from_the_daemon(served):
    pytest.importorskip("argcomplete", reason="completion needs the optional argcomplete")
    _, words = _complete("tapswitch ctl nam")
    assert sorted(w.strip() for w in words) == ["namespace-set", "namespaces"]
    _, words = _complete(f"tapswitch ctl --socket {served.path} addresses w")
    assert [w.strip() for w in words] == ["web"]
    _, words = _complete(f"tapswitch ctl --socket {served.path} counters --port tsw")
    assert [w.strip() for w in words] == ["tsw-up"]


def test_without_argcomplete_the_command_runs_and_ignores_completion():
    block = ("import sys\n"
             "class Block:\n"
             "    def find_spec(self, name, path=None, target=None):\n"
             "        if name == 'argcomplete': raise ImportError('not installed')\n"
             "sys.meta_path.insert(0, Block())\n"
             "from pyctl.cli import main\n"
             "sys.exit(main(sys.argv[1:]))\n")
    done = python(["-c", block, "--version"])
    assert done.returncode == 0 and done.stdout.startswith("tapswitch ")
    done = python(["-c", block, "--version"], env={"_ARGCOMPLETE": "1", "COMP_LINE": "tapswitch ",
                                                   "COMP_POINT": "10"})
    assert done.returncode == 0 and done.stdout.startswith("tapswitch ")


needs_setpriv = pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists(SETPRIV),
                                   reason="drops capabilities with setpriv: needs root")
NO_CAPS = (SETPRIV, "--bounding-set=-net_admin,-sys_admin")


@needs_setpriv
def test_run_without_the_capabilities_names_them_and_creates_nothing(tmp_path):
    cfg = tmp_path / "t.toml"
    cfg.write_text(f'[daemon]\nsocket = "{tmp_path}/ctl.sock"\n[[namespace]]\nname = "web"\n'
                   f'kind = "l3"\n[[port]]\nname = "tsnocap0"\nnamespace = "web"\nnetns = "tsnocap"\n')
    done = python(["-m", "pyctl", "run", str(cfg)], prefix=NO_CAPS)
    assert done.returncode == 1
    assert "missing privilege: CAP_NET_ADMIN is needed" in done.stderr
    assert "missing privilege: CAP_SYS_ADMIN is needed" in done.stderr
    assert not os.path.exists(tmp_path / "ctl.sock") and "tsnocap" not in os.listdir("/run/netns")


@needs_setpriv
def test_the_demo_without_the_capabilities_names_them():
    done = python(["-m", "pyctl", "demo"], prefix=NO_CAPS)
    assert done.returncode == 1
    assert "missing CAP_NET_ADMIN and CAP_SYS_ADMIN" in done.stdout


@needs_setpriv
def test_a_socket_the_caller_may_not_open_says_whose_it_is(served):
    os.chown(served.path, 65534, 65534)     # nobody's, 0600: root without DAC override is out
    done = python(["-m", "pyctl", "ctl", "--socket", served.path, "ping"],
                  prefix=(SETPRIV, "--bounding-set=-dac_override,-dac_read_search"))
    assert done.returncode == 1
    assert "Permission denied" in done.stderr and "its owner's, mode 0600" in done.stderr


@pytest.mark.parametrize("argv, verb", [
    (["ctl", "ping"], "ping"), (["ctl", "-s", "x", "--json", "addresses", "web"], "addresses"),
    (["--log-level", "info", "ctl", "--socket", "ping", "namespaces"], "namespaces"),
    (["ctl", "call", "x"], "call"), (["run", "ctl"], None), (["ctl", "nope"], None), (["ctl"], None),
])
def test_the_verb_a_ctl_command_line_names(argv, verb):
    from pyctl.control.ctl import verb_of
    assert verb_of(argv) == verb


def test_a_misspelt_verb_is_a_usage_error_listing_the_verbs(capsys):
    assert main(["ctl", "--socket", "/nonexistent", "pnig"]) == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'pnig'" in err and "'ping'" in err and "'address-add'" in err
