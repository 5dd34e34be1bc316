"""`tapswitch check` on this host: a TAP name a link already has, in the host or inside the
kernel namespace the TAP would move into, is refused; an existing kernel namespace alone is
only a note (the port enters it); nothing is created or removed by checking."""
import subprocess
import sys

from pyctl import kernel
from pyctl.kernel.facts import HostFacts, effective_capabilities
from tests.support import config_text


def _config(port, netns):
    return (config_text.namespace("web", "l3", "10.0.0.2/24")
            + config_text.port(port, "web", netns=netns, address="10.0.0.2/24"))


def _check(tmp_path, text):
    path = tmp_path / "t.toml"
    path.write_text(text)
    return subprocess.run([sys.executable, "-m", "pyctl", "check", str(path)],
                          capture_output=True, text=True, timeout=60)


def test_names_taken_in_the_host_and_in_an_existing_kernel_namespace(tmp_path, make_netns,
                                                                    kernel_registry):
    ns = make_netns()
    inside = kernel.create_bridge(kernel.unique_name("tsfx"), netns=ns, registry=kernel_registry)
    assert inside in HostFacts().links(ns.name)
    done = _check(tmp_path, _config(inside, ns.name))
    assert done.returncode == 1
    assert f"port[0].netns: kernel namespace {ns.name!r} already holds a link named {inside!r}" \
        in done.stderr

    free = kernel.unique_name("tsfy")
    done = _check(tmp_path, _config(free, ns.name))
    assert done.returncode == 0, done.stderr
    assert f"note: kernel namespace {ns.name!r} exists" in done.stdout

    kernel.create_bridge(free, registry=kernel_registry)
    done = _check(tmp_path, _config(free, ns.name))
    assert done.returncode == 1
    assert f"port[0].name: a link named {free!r} already exists in the host" in done.stderr
    assert ns.name in kernel.list_netns() and free in kernel.host.links()     # left as it was


def test_capabilities_are_read():
    assert {"CAP_NET_ADMIN", "CAP_SYS_ADMIN"} <= effective_capabilities()
