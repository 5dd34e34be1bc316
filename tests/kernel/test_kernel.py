"""Unit tests of pyctl.kernel that need no root: names, validation, the
cleanup registry (ordering, tolerance, fork and signal behaviour)."""

import errno
import os
import subprocess
import sys
import textwrap

import pytest

from pyctl import kernel


def test_unique_names_are_short_distinct_and_carry_the_process_tag():
    names = [kernel.unique_name("veth") for _ in range(5000)]
    assert len(set(names)) == len(names)
    assert all(len(n) <= kernel.MAX_IFNAME for n in names)
    assert all(n.startswith("veth" + kernel.process_tag()) for n in names)


def test_unique_name_refuses_long_or_odd_prefixes():
    with pytest.raises(ValueError, match="too long"):
        kernel.unique_name("abcdefghijk")          # 11 + 4 + counter > 15
    for bad in ("", "a b", "a/b", "tap:0"):
        with pytest.raises(ValueError):
            kernel.unique_name(bad)


def test_forked_child_gets_its_own_tag():
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(wfd, kernel.unique_name("t").encode())
        os._exit(0)
    os.close(wfd)
    child_name = os.read(rfd, 100).decode()
    os.close(rfd)
    os.waitpid(pid, 0)
    assert not child_name.startswith("t" + kernel.process_tag())


@pytest.mark.parametrize("name", ["", "x" * 16, ".", "..", "a/b", "a b", "a:1"])
def test_check_ifname_rejects(name):
    with pytest.raises(ValueError):
        kernel.check_ifname(name)


def test_check_ifname_accepts_fifteen_characters():
    assert kernel.check_ifname("x" * 15) == "x" * 15


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "x" * 256])
def test_check_netns_name_rejects(name):
    with pytest.raises(ValueError):
        kernel.check_netns_name(name)


@pytest.mark.parametrize("cidr", ["10.0.0.1", "10.0.0.300/24", "10.0.0.1/33", "fd00::1/129", "fd00::g/64", None])
def test_bad_addresses_are_refused_before_any_kernel_call(cidr):
    with pytest.raises(ValueError):
        kernel.host.add_address("nonexistent0", cidr)


@pytest.mark.parametrize("mtu", [0, 67, 65536, "1500", 1500.0])
def test_bad_mtu_is_refused_before_any_kernel_call(mtu):
    with pytest.raises(ValueError, match="MTU"):
        kernel.host.set_mtu("nonexistent0", mtu)


def test_route_needs_a_gateway_or_device():
    with pytest.raises(ValueError):
        kernel.host.add_route("default")


def test_registry_undoes_in_reverse_order_once():
    reg = kernel.CleanupRegistry()
    done = []
    for i in range(5):
        reg.register(f"obj{i}", lambda i=i: done.append(i))
    assert reg.pending() == [f"obj{i}" for i in range(5)]
    assert reg.cleanup() == []
    assert done == [4, 3, 2, 1, 0]
    assert reg.cleanup() == [] and done == [4, 3, 2, 1, 0]
    assert len(reg) == 0


def test_registry_skips_gone_objects_and_reports_real_failures_without_stopping():
    reg = kernel.CleanupRegistry()
    done = []

    def gone():
        raise FileNotFoundError(errno.ENODEV, "no such device")

    def broken():
        raise PermissionError(errno.EPERM, "not allowed")

    reg.register("first", lambda: done.append("first"))
    reg.register("broken", broken)
    reg.register("gone", gone)
    reg.register("last", lambda: done.append("last"))
    failures = reg.cleanup()
    assert done == ["last", "first"]
    assert [(what, type(exc)) for what, exc in failures] == [("broken", PermissionError)]


def test_registry_forget_drops_one_entry():
    reg = kernel.CleanupRegistry()
    done = []
    k1 = reg.register("a", lambda: done.append("a"))
    reg.register("b", lambda: done.append("b"))
    reg.forget(k1)
    reg.cleanup()
    assert done == ["b"]


def test_registry_in_a_forked_child_leaves_the_parents_objects_alone():
    reg = kernel.CleanupRegistry()
    rfd, wfd = os.pipe()
    reg.register("parent's", lambda: os.write(wfd, b"undone"))
    pid = os.fork()
    if pid == 0:
        reg.cleanup()
        os._exit(0)
    os.waitpid(pid, 0)
    os.close(wfd)
    assert os.read(rfd, 100) == b""
    os.close(rfd)
    assert reg.pending() == ["parent's"]


SIGNAL_SCRIPT = textwrap.dedent("""
    import os, signal, sys, time
    from pyctl import kernel
    reg = kernel.CleanupRegistry()
    reg.register("marker", lambda: open(sys.argv[1], "w").write("cleaned"))
    reg.install_signal_handlers()
    os.kill(os.getpid(), getattr(signal, sys.argv[2]))
    time.sleep(5)
    print("not reached")
""")


@pytest.mark.parametrize("signame, code", [("SIGTERM", 128 + 15), ("SIGINT", -2)])
def test_signal_handlers_clean_up_then_exit(tmp_path, signame, code):
    marker = tmp_path / "marker"
    proc = subprocess.run([sys.executable, "-c", SIGNAL_SCRIPT, str(marker), signame],
                          capture_output=True, text=True, timeout=30)
    assert marker.read_text() == "cleaned"
    assert proc.returncode == code
    assert "not reached" not in proc.stdout
    if signame == "SIGINT":
        assert "KeyboardInterrupt" in proc.stderr


def test_link_stats_difference():
    a = kernel.LinkStats(10, 20, 1000, 2000, 1, 2, 0, 0)
    b = kernel.LinkStats(4, 5, 400, 500, 1, 0, 0, 0)
    assert a - b == kernel.LinkStats(6, 15, 600, 1500, 0, 2, 0, 0)
