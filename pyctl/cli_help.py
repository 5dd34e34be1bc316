"""What the `tapswitch` command says beyond its commands: ``--version``, shell completion
(argcomplete, optional), and the privilege a refused operation lacked.

Everything here is imported lazily or costs nothing until used: a `ctl` call stays lean
(bench/ctl_latency.py times it).

Completion: with argcomplete installed (``pip install 'tapswitch[completion]'``), once per
shell ``eval "$(register-python-argcomplete tapswitch)"`` (or argcomplete's global
activation: the marker ``PYTHON_ARGCOMPLETE_OK`` is in pyctl/cli.py) completes commands,
verbs, options and, from a running daemon, namespace and port names
(``pyctl.control.ctl.names_from_daemon``).  Without argcomplete
`tapswitch` runs exactly the same.
"""
from __future__ import annotations

import argparse
import os

__all__ = ["VersionAction", "complete", "privilege_hint"]


class VersionAction(argparse.Action):
    """``--version``: the package's version and the control protocol's, read when asked."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS,
                 help="print the version and exit"):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from importlib import metadata

        from pyctl.control.protocol import PROTOCOL_VERSION
        try:
            version = metadata.version("tapswitch")
        except metadata.PackageNotFoundError:
            version = "unknown (not installed)"
        print(f"tapswitch {version} (control protocol {PROTOCOL_VERSION})")
        parser.exit()


def complete(parser: argparse.ArgumentParser) -> None:
    """Answer a completion request of the shell (argcomplete's protocol) and exit; nothing
    when the shell did not ask or argcomplete is not installed."""
    if "_ARGCOMPLETE" not in os.environ:
        return
    try:
        import argcomplete
    except ImportError:
        return
    argcomplete.autocomplete(parser)


def privilege_hint(exc: BaseException) -> str | None:
    """For an operation the kernel refused (EPERM / EACCES), the capabilities this
    process lacks, named; None when it has them (or the refusal is not the kernel's)."""
    import errno
    if not isinstance(exc, OSError) or exc.errno not in (errno.EPERM, errno.EACCES):
        return None
    from pyctl.kernel.facts import missing_capabilities
    missing = missing_capabilities(("CAP_NET_ADMIN", "CAP_SYS_ADMIN"))
    if not missing:
        return None
    return (f"missing {' and '.join(missing)}: TAPs and links need CAP_NET_ADMIN, kernel "
            f"namespaces CAP_SYS_ADMIN (run as root, or grant them: docs/operations.md)")
