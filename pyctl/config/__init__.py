"""The TOML topology file of `tapswitch run`: parsed, validated, applied.

``load_config(path_or_text)`` turns the file into a passive ``Config`` (plain
frozen records, no model objects) and refuses anything it does not
understand: unknown keys, wrong types, bad addresses, references to
namespaces or ports that are not defined.  Every refusal is a ``ConfigError``
whose message starts with ``FILE:LINE: key.path:``.  ``apply(config, switch)``
builds the topology in a model all-or-nothing.  The format is documented in
docs/control.md; examples/ holds complete files.
"""
from pyctl.config.apply import apply, check
from pyctl.config.load import load_config
from pyctl.config.spec import (
                               DEFAULT_SOCKET,
                               IO_BACKENDS,
                               KINDS,
                               Config,
                               ConfigError,
                               ControlLimits,
                               DaemonSettings,
                               NamespaceSpec,
                               PortSpec,
                               RouteSpec,
                               SlowPathLimits,
)

__all__ = [
    "ConfigError", "Config", "NamespaceSpec", "RouteSpec", "PortSpec",
    "DaemonSettings", "SlowPathLimits", "ControlLimits", "load_config", "apply", "check",
    "DEFAULT_SOCKET", "IO_BACKENDS", "KINDS",
]
