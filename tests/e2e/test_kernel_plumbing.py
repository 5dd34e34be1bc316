"""Root-only tests of pyctl.kernel against the real kernel: namespaces, veths,
bridges, moved links, code run inside namespaces, and that nothing is left
behind."""

import os
import socket
import subprocess

import pytest

from pyctl import errors, kernel


def _host_links():
    return set(kernel.host.links())


def _udp_roundtrip(ns_a, addr_a, ns_b, addr_b, payload=b"ping"):
    """Send from ns_a to ns_b and back; returns what each side received."""
    family = socket.AF_INET6 if ":" in addr_b else socket.AF_INET
    with ns_b.socket(family, socket.SOCK_DGRAM) as rx, \
         ns_a.socket(family, socket.SOCK_DGRAM) as tx:
        rx.bind((addr_b, 0))
        rx.settimeout(5)
        tx.settimeout(5)
        tx.sendto(payload, rx.getsockname())
        data, peer = rx.recvfrom(2048)
        rx.sendto(data[::-1], peer)
        back, _ = tx.recvfrom(2048)
    return data, peer[0], back


def test_namespace_lifecycle(kernel_registry):
    ns = kernel.NetNamespace(registry=kernel_registry)
    assert ns.name in kernel.list_netns()
    assert ns.links() == ["lo"]
    assert ns.link_info("lo")["up"]
    assert "127.0.0.1/8" in ns.addresses("lo")
    with pytest.raises(errors.AlreadyExists) as info:
        kernel.NetNamespace(ns.name, registry=kernel_registry)
    assert isinstance(info.value, FileExistsError) and ns.name in str(info.value)
    ns.remove()
    ns.remove()                       # idempotent
    assert ns.name not in kernel.list_netns()
    assert not os.path.exists(ns.path)
    with pytest.raises(errors.NotFound):
        ns.links()


def test_caller_namespace_never_changes(make_netns):
    before = os.stat("/proc/thread-self/ns/net").st_ino
    ns = make_netns()
    ns.socket(socket.AF_INET, socket.SOCK_DGRAM).close()
    ns.run(["true"])
    ns.call(os.getpid)
    assert os.stat("/proc/thread-self/ns/net").st_ino == before
    assert os.stat(f"/proc/{os.getpid()}/ns/net").st_ino == before
    assert os.stat(ns.path).st_ino != before


def test_veth_between_two_namespaces_carries_udp_and_counts(make_netns, kernel_registry):
    a, b = make_netns(), make_netns()
    va, vb = kernel.create_veth(kernel.unique_name("va"), kernel.unique_name("vb"),
                                netns_a=a, netns_b=b, registry=kernel_registry)
    assert va in a.links() and vb in b.links() and va not in _host_links()
    a.configure(va, address="10.201.0.1/24", mtu=9000, txqueuelen=5000)
    b.configure(vb, address="10.201.0.2/24", gateway="10.201.0.1")
    assert a.link_info(va)["mtu"] == 9000 and a.link_info(va)["txqueuelen"] == 5000
    assert {"dst": "0.0.0.0/0", "gateway": "10.201.0.1", "oif": b.link_index(vb)} in b.routes()
    before = b.link_stats(vb)
    data, src, back = _udp_roundtrip(a, "10.201.0.1", b, "10.201.0.2", b"hello")
    assert (data, src, back) == (b"hello", "10.201.0.1", b"olleh")
    delta = b.link_stats(vb) - before
    assert delta.rx_packets >= 1 and delta.tx_packets >= 1 and delta.rx_bytes >= 5


def test_veth_dual_stack_is_usable_at_once(make_netns, kernel_registry):
    a, b = make_netns(), make_netns()
    va, vb = kernel.create_veth(kernel.unique_name("va"), kernel.unique_name("vb"),
                                netns_a=a, netns_b=b, registry=kernel_registry)
    a.configure(va, address=["10.205.0.1/24", "fd00:205::1/64"])
    b.configure(vb, address=["fd00:205::2/64", "10.205.0.2/24"],
                gateway=["fd00:205::1", "10.205.0.1"])
    routes6 = b.routes(socket.AF_INET6)
    assert {"dst": "::/0", "gateway": "fd00:205::1", "oif": b.link_index(vb)} in routes6
    assert "fd00:205::2/64" in b.addresses(vb, family=socket.AF_INET6)
    assert "fd00:205::2/64" not in b.addresses(vb)                # IPv4 by default
    assert {"fd00:205::2/64", "10.205.0.2/24"} <= set(b.addresses(vb, family=0))
    # No DAD to wait for: the first datagram goes (and the answer comes) at once.
    data, src, back = _udp_roundtrip(b, "fd00:205::2", a, "fd00:205::1", b"six")
    assert (data, src, back) == (b"six", "fd00:205::2", b"xis")


def test_add_route_default_follows_the_gateway(make_netns, kernel_registry):
    a = make_netns()
    va, _ = kernel.create_veth(kernel.unique_name("va"), kernel.unique_name("vb"),
                               netns_a=a, registry=kernel_registry)
    a.configure(va, address=["10.206.0.1/24", "fd00:206::1/64"])
    a.add_route("default", gateway="fd00:206::fe", dev=va)
    a.add_route("fd00:9::/48", gateway="fd00:206::fe")
    assert {r["dst"] for r in a.routes(socket.AF_INET6)} >= {"::/0", "fd00:9::/48"}
    assert all(r["dst"] != "0.0.0.0/0" for r in a.routes())
    with pytest.raises(errors.InvalidArgument):
        a.add_route("10.9.0.0/16", gateway="fd00:206::fe")


def test_moved_link_is_configured_inside_its_namespace(make_netns, kernel_registry):
    a, b = make_netns(), make_netns()
    h, peer = kernel.create_veth(kernel.unique_name("vh"), kernel.unique_name("vp"),
                                 netns_b=b, registry=kernel_registry)
    assert h in _host_links()
    moved = kernel.move_link(h, a, new_name="eth0")
    assert moved == "eth0" and "eth0" in a.links() and h not in _host_links()
    a.configure("eth0", address="10.202.0.1/24")
    b.configure(peer, address="10.202.0.2/24")
    assert _udp_roundtrip(b, "10.202.0.2", a, "10.202.0.1")[0] == b"ping"


def test_bridge_joins_two_namespaces(make_netns, kernel_registry):
    a, b, mid = make_netns(), make_netns(), make_netns()
    br = kernel.create_bridge("br0", netns=mid, registry=kernel_registry)
    for ns, addr in ((a, "10.203.0.1/24"), (b, "10.203.0.2/24")):
        inner, outer = kernel.create_veth(kernel.unique_name("vi"), kernel.unique_name("vo"),
                                          netns_a=ns, netns_b=mid, registry=kernel_registry)
        kernel.set_master(outer, br, netns=mid)
        ns.configure(inner, address=addr)
    assert mid.link_info(br)["up"]
    assert _udp_roundtrip(a, "10.203.0.1", b, "10.203.0.2")[1] == "10.203.0.1"
    assert mid.link_stats(br).rx_packets >= 0


def test_bad_requests_change_nothing(make_netns, kernel_registry):
    a = make_netns()
    taken, peer, refused = (kernel.unique_name(p) for p in ("vx", "vy", "vz"))
    kernel.create_veth(taken, peer, registry=kernel_registry)
    with pytest.raises(errors.AlreadyExists):
        kernel.create_veth(taken, refused, netns_b=a, registry=kernel_registry)
    assert a.links() == ["lo"]
    assert refused not in _host_links()
    with pytest.raises(errors.NotFound, match="nosuch0"):
        a.add_address("nosuch0", "10.204.0.1/24")
    with pytest.raises(errors.NotFound):
        kernel.move_link("nosuch0", a)
    with pytest.raises(errors.InvalidArgument):
        a.add_address("lo", "10.204.0.1")
    assert "10.204.0.1/32" not in a.addresses()
    kernel_registry.cleanup()
    # Only this test's names: other processes on the machine may make links meanwhile.
    assert not {taken, peer, refused} & set(_host_links())


def test_call_returns_results_raises_errors_and_times_out(make_netns):
    a = make_netns()

    def inode():
        return os.stat("/proc/thread-self/ns/net").st_ino

    assert a.call(inode) == os.stat(a.path).st_ino
    assert a.call(pow, 2, 10) == 1024

    def fails():
        raise KeyError("inside")

    with pytest.raises(KeyError) as info:
        a.call(fails)
    assert any("fails" in note for note in info.value.__notes__)
    with pytest.raises(TimeoutError):
        a.call(__import__("time").sleep, 30, timeout=0.5)


def test_run_and_popen_execute_inside_and_are_reaped(make_netns, kernel_registry):
    a = make_netns()
    out = a.run(["ip", "-o", "link", "show"]).stdout
    assert "lo" in out and "eth0" not in out
    with pytest.raises(subprocess.CalledProcessError):
        a.run(["false"])
    with pytest.raises(subprocess.TimeoutExpired):
        a.run(["sleep", "30"], timeout=0.3)
    proc = a.popen(["sleep", "30"])
    assert any(str(proc.pid) in what for what in kernel_registry.pending())
    kernel_registry.cleanup()
    assert proc.poll() is not None


def test_socket_belongs_to_its_namespace(make_netns):
    a = make_netns()
    a.add_address("lo", "10.205.0.1/32")
    with a.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("10.205.0.1", 0))                # only exists inside a
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s, pytest.raises(OSError):
        s.bind(("10.205.0.1", 0))


def test_cleanup_leaves_nothing_behind():
    reg = kernel.CleanupRegistry()
    names = {p: kernel.unique_name(p) for p in ("va", "vb", "vh", "vi", "br")}
    a = kernel.NetNamespace(registry=reg)
    b = kernel.NetNamespace(registry=reg)
    kernel.create_veth(names["va"], names["vb"], netns_a=a, netns_b=b, registry=reg)
    kernel.create_veth(names["vh"], names["vi"], registry=reg)
    kernel.create_bridge(names["br"], registry=reg)
    assert {names["vh"], names["vi"], names["br"]} <= set(_host_links())
    proc = a.popen(["sleep", "30"])
    b.remove()                               # already gone by the time cleanup runs
    assert reg.cleanup() == []
    assert a.name not in kernel.list_netns() and b.name not in kernel.list_netns()
    assert not set(names.values()) & set(_host_links())   # others may make links meanwhile
    assert proc.poll() is not None


def test_sysctl_is_set_inside_the_namespace_only(make_netns):
    a = make_netns()
    host_value = open("/proc/sys/net/ipv4/ip_forward").read().strip()
    a.set_sysctl("net.ipv4.ip_forward", 1 - int(host_value))
    assert a.run(["cat", "/proc/sys/net/ipv4/ip_forward"]).stdout.strip() == str(1 - int(host_value))
    assert open("/proc/sys/net/ipv4/ip_forward").read().strip() == host_value
    with pytest.raises(errors.NotFound):
        a.set_sysctl("net.ipv4.no_such_knob", 1)
    for bad in ("kernel.hostname", "net", "net..x", "net.ipv4/../x"):
        with pytest.raises(errors.InvalidArgument):
            a.set_sysctl(bad, 1)
        with pytest.raises(errors.InvalidArgument):
            a.get_sysctl(bad)
    assert a.get_sysctl("net.ipv4.ip_forward") == str(1 - int(host_value))
    assert kernel.host.get_sysctl("net.ipv4.ip_forward") == host_value


def test_attach_gives_a_handle_that_never_removes_the_namespace(make_netns):
    owner = make_netns()
    handle = kernel.NetNamespace.attach(owner.name)
    assert handle.links() == ["lo"] and handle.run(["true"]).returncode == 0
    handle.remove()
    assert owner.name in kernel.list_netns() and owner.links() == ["lo"]
    with pytest.raises(errors.NotFound):
        kernel.NetNamespace.attach("tsns-no-such-namespace")
