"""Config files for the tests that run `tapswitch run FILE`: the TOML text of a daemon table,
the root's addresses and tenants (an L3 namespace with a port into its own kernel namespace),
written from keyword arguments so each test states only what differs."""
import json

def _value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return json.dumps(str(value))      # a TOML basic string is a JSON string


def table(header: str, **keys) -> str:
    """``[header]`` or ``[[header]]`` (pass the brackets) with its keys; None values left out."""
    lines = [f"{k} = {_value(v)}" for k, v in keys.items() if v is not None]
    return "\n" + header + "\n" + "".join(line + "\n" for line in lines)


def daemon(sock, **keys) -> str:
    """The ``[daemon]`` table with its control socket."""
    return table("[daemon]", socket=sock, **keys)


def root(*addresses) -> str:
    return table("[root]", addresses=list(addresses))


def namespace(name, kind, *addresses, parent=None, **keys) -> str:
    """A ``[[namespace]]`` table; ``addresses`` left out when there are none."""
    return table("[[namespace]]", name=name, kind=kind, parent=parent,
                 addresses=list(addresses) or None, **keys)


def port(name, namespace, **keys) -> str:
    return table("[[port]]", name=name, namespace=namespace, **keys)


def route(namespace, prefix, **keys) -> str:
    return table("[[route]]", namespace=namespace, prefix=prefix, **keys)


def text(*tables) -> str:
    """A file of ``tables``, the first one on its first line (line numbers in expected
    errors count from there)."""
    return "".join(tables).removeprefix("\n")


def tenant(name, address, *, port, netns, gateway, parent=None, **keys) -> str:
    """An L3 namespace owning ``address`` (``IP/PLEN``) and its port ``port``, a TAP into
    the kernel namespace ``netns`` configured with that address and ``gateway``; ``keys``:
    more of the namespace's (``socket=True``)."""
    return (namespace(name, "l3", address, parent=parent, **keys)
            + table("[[port]]", name=port, namespace=name, netns=netns, address=address,
                    gateway=gateway))


# The config tests' smallest topology: an L2 and one L3 of its subnet.
TENANTS_WEB = text(namespace("tenants", "l2", "10.1.0.1/24"),
                   namespace("web", "l3", "10.1.0.10/24", parent="tenants"))
