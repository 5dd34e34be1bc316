"""The one validator of `check`, `run` and a reload: every refusal at once, each once; the
model's refusals; the host's (privileges, names taken, IPv6, limits, sockets) from Facts."""
import logging
import socket
import subprocess
import sys

import pytest

from pyctl.config import ConfigError, load_config
from pyctl.config.spec import ConfigErrors
from pyctl.config.validate import Facts, validate
from tests.support import config_text

FIVE = """\
[daemon]
batch_size = 0
colour = "blue"

[[namespace]]
name = "tenants"
kind = "l2"
addresses = ["10.1.0.1/24"]

[[namespace]]
name = "web"
kind = "l4"
parent = "tenants"

[[namespace]]
name = "db"
kind = "l3"
parent = "tenants"
addresses = ["10.1.0.300/24"]

[[port]]
name = "tsw-db"
namespace = "db"
mtu = 20
"""

GOOD = (config_text.TENANTS_WEB
        + config_text.port("tsw-web", "web", netns="tenant-web", address="10.1.0.10/24",
                           gateway="10.1.0.1")
        + config_text.port("tsw-up", "tenants"))


def where(report):
    return [(e.line, e.key) for e in report.errors]


def test_five_mistakes_are_five_refusals_in_line_order():
    report = validate(FIVE, source="five.toml")
    assert where(report) == [(2, "daemon.batch_size"), (3, "daemon.colour"),
                             (12, "namespace[1].kind"), (19, "namespace[2].addresses[0]"),
                             (24, "port[0].mtu")]
    assert str(report.errors[3]).startswith("five.toml:19: namespace[2].addresses[0]: invalid")
    with pytest.raises(ConfigErrors) as info:
        load_config(FIVE, source="five.toml")
    assert len(info.value.errors) == 5 and info.value.key == "daemon.batch_size"
    assert len(str(info.value).splitlines()) == 5


def test_check_prints_five_and_exits_1(tmp_path):
    path = tmp_path / "five.toml"
    path.write_text(FIVE)
    done = subprocess.run([sys.executable, "-m", "pyctl", "check", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 6 and lines[-1] == f"tapswitch: {path}: 5 errors"
    assert all(line.startswith(f"tapswitch: EINVAL: {path}:") for line in lines[:5])


def test_one_mistake_is_reported_once():
    # web's kind is wrong: its child, its port and the route through that port are not
    # refused again for it (each of them is fine on its own)
    text = config_text.text(config_text.namespace("web", "l4"),
                            config_text.namespace("child", "l3", parent="web"),
                            config_text.port("tsw-web", "web"),
                            config_text.route("web", "default", port="tsw-web"))
    assert where(validate(text)) == [(3, "namespace[0].kind")]


def test_a_parent_cycle_is_one_refusal():
    text = "".join(f'[[namespace]]\nname = "{a}"\nkind = "l2"\nparent = "{b}"\n\n'
                   for a, b in (("a", "b"), ("b", "c"), ("c", "a"), ("d", "a")))
    report = validate(text)
    assert len(report.errors) == 1 and "parent cycle" in report.errors[0].reason


def test_every_model_refusal_is_found_with_its_code():
    text = (GOOD + config_text.namespace("db", "l3", "10.1.0.10/24", parent="tenants")
            + config_text.namespace("cache", "l3", "10.1.0.1/24", "10.9.0.5/24", parent="tenants")
            + config_text.route("tenants", "10.5.0.0/16", via="10.1.0.254", port="tsw-up")
            + config_text.route("tenants", "10.6.0.0/16", via="fd00::1"))
    report = validate(text)
    got = [(e.key, e.code) for e in report.errors]
    assert got == [("namespace[2].addresses[0]", "EADDRINUSE"),
                   ("namespace[3].addresses[0]", "EADDRINUSE"),
                   ("route[1]", "EINVAL")]
    assert report.switch.namespace("cache")     # what was fine was built


def test_an_empty_file_is_refused_but_a_daemon_table_alone_is_not():
    for text in ("", "\n# nothing but a comment\n\n"):
        report = validate(text, source="empty.toml")
        assert [e.reason.split(":")[0] for e in report.errors] == ["the file is empty"]
    assert validate('[daemon]\nsocket = "/tmp/x.sock"\n').ok


def test_an_ipv6_address_on_a_link_below_1280_bytes_is_refused():
    text = GOOD.replace('address = "10.1.0.10/24"\ngateway = "10.1.0.1"',
                        'address = "fd00::10/64"\nmtu = 1000')
    report = validate(text)
    assert where(report) == [(16, "port[0].address")]       # the port options' one rule
    assert "below 1280" in report.errors[0].reason


class FakeHost(Facts):
    def __init__(self, caps=("CAP_NET_ADMIN", "CAP_SYS_ADMIN"), tun=None, netns=(), links=(),
                 inside=None, ipv6=True, nofile=1024):
        self.caps, self.tun, self.ns, self.host_links = frozenset(caps), tun, frozenset(netns), links
        self.inside, self.v6, self.nofile = inside or {}, ipv6, nofile

    def capabilities(self):
        return self.caps

    def tun_problem(self):
        return self.tun

    def netns(self):
        return self.ns

    def links(self, netns):
        return frozenset(self.host_links if netns is None else self.inside.get(netns, ()))

    def ipv6(self):
        return self.v6

    def open_files(self):
        return self.nofile


def host_errors(text=GOOD, **kwargs):
    own = {k: kwargs.pop(k) for k in ("own_links", "own_netns") if k in kwargs}
    report = validate(text, facts=FakeHost(**kwargs), check_sockets=False, **own)
    return [(e.key, e.code, e.reason) for e in report.errors], report.notes


def test_a_good_file_on_a_good_host_passes():
    assert host_errors() == ([], [])


def test_missing_privileges_are_named():
    errs, _ = host_errors(caps=())
    assert [(k, c) for k, c, _ in errs] == [("port[0]", "EPERM"), ("port[0]", "EPERM")]
    assert "CAP_NET_ADMIN" in errs[0][2] and "CAP_SYS_ADMIN" in errs[1][2]
    errs, _ = host_errors(GOOD.replace('netns = "tenant-web"\naddress = "10.1.0.10/24"\n'
                                       'gateway = "10.1.0.1"\n', ""), caps=("CAP_NET_ADMIN",))
    assert errs == []        # no kernel namespace: CAP_SYS_ADMIN is not needed
    errs, _ = host_errors(tun="/dev/net/tun does not exist")
    assert [(k, c) for k, c, _ in errs] == [("port[0]", "ENODEV")]


def test_names_taken_by_links_that_are_not_the_switchs():
    errs, notes = host_errors(links={"lo", "tsw-up"}, netns={"tenant-web"},
                              inside={"tenant-web": {"lo", "tsw-web"}})
    assert [(k, c) for k, c, _ in errs] == [("port[0].netns", "EEXIST"), ("port[1].name", "EEXIST")]
    assert "already holds a link named 'tsw-web'" in errs[0][2]
    errs, notes = host_errors(links={"lo"}, netns={"tenant-web"}, inside={"tenant-web": {"lo"}})
    assert errs == [] and notes == ["kernel namespace 'tenant-web' exists: port 'tsw-web' "
                                    "enters it and leaves it in place when it closes"]
    # a reload: the switch's own TAPs and kernel namespaces are not in its way
    errs, notes = host_errors(links={"tsw-up", "tsw-web"}, netns={"tenant-web"},
                              inside={"tenant-web": {"tsw-web"}}, own_links={"tsw-up", "tsw-web"},
                              own_netns={"tenant-web"})
    assert (errs, notes) == ([], [])


def test_ipv6_where_the_kernel_has_none():
    text = GOOD.replace('address = "10.1.0.10/24"\ngateway = "10.1.0.1"',
                        'address = "fd00::10/64"\ngateway = "fd00::1"')
    errs, _ = host_errors(text, ipv6=False)
    assert [(k, c) for k, c, _ in errs] == [("port[0].address", "EAFNOSUPPORT")]


def test_table_sizes_and_open_files():
    ports = "".join(f'[[port]]\nname = "p{k}"\nnamespace = "init"\n' for k in range(30))
    report = validate(ports, facts=FakeHost(), check_sockets=False, max_ports=20, max_namespaces=4)
    assert [(e.key, e.code) for e in report.errors] == [("port[20]", "ENOSPC")]    # once
    assert report.errors[0].reason.endswith("holds 20 of 20 (9 more past it)")
    errs, _ = host_errors(ports, nofile=80)
    assert [(k, c) for k, c, _ in errs] == [("port", "EMFILE")]
    many = "".join(f'[[namespace]]\nname = "n{k}"\nkind = "l3"\n' for k in range(5))
    report = validate(many, facts=FakeHost(), check_sockets=False, max_namespaces=4)
    assert [(e.key, e.code) for e in report.errors] == [("namespace[3].name", "ENOSPC")]


def test_the_admin_socket_in_use_or_not_a_socket(tmp_path):
    sock_path = tmp_path / "ctl.sock"
    text = f'[daemon]\nsocket = "{sock_path}"\n'
    assert validate(text, facts=FakeHost()).ok
    with socket.socket(socket.AF_UNIX) as live:
        live.bind(str(sock_path))
        live.listen()
        report = validate(text, facts=FakeHost())
        assert [(e.key, e.code) for e in report.errors] == [("daemon.socket", "EBUSY")]
    sock_path.unlink()
    sock_path.write_text("not a socket")
    assert [e.code for e in validate(text, facts=FakeHost()).errors] == ["EEXIST"]


def test_the_metrics_address_taken():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        report = validate(f'[daemon]\nmetrics = "127.0.0.1:{port}"\n', facts=FakeHost())
    assert [(e.key, e.code) for e in report.errors] == [("daemon.metrics", "EADDRINUSE")]
    for bad in ("localhost:9477", "127.0.0.1", "127.0.0.1:0", "[::1]:70000"):
        with pytest.raises(ConfigError, match="daemon.metrics"):
            load_config(f'[daemon]\nmetrics = "{bad}"\n')
    assert load_config('[daemon]\nmetrics = "[::1]:9477"\n').daemon.metrics == ("::1", 9477)


def test_run_refuses_what_check_refuses_and_logs_every_error(tmp_path, caplog):
    from pyctl.daemon.service import run_config
    path = tmp_path / "five.toml"
    path.write_text(FIVE)
    with caplog.at_level(logging.ERROR, logger="tapswitch.daemon"):
        assert run_config(str(path)) == 1
    lines = [r.getMessage() for r in caplog.records if r.name == "tapswitch.daemon"]
    assert len(lines) == 6 and lines[-1] == f"{path}: 5 errors: nothing was started"
    assert lines[4].startswith(f"EINVAL: {path}:24: port[0].mtu")


class Left:
    def __init__(self, live_pid=None, links=(), netns=()):
        self.live_pid, self.links, self.netns = live_pid, frozenset(links), frozenset(netns)


class HostWithState(FakeHost):
    def __init__(self, left, **kwargs):
        super().__init__(**kwargs)
        self.left = left

    def recorded(self, state_path):
        return self.left


def test_what_a_dead_daemon_left_is_the_switchs_own_and_a_live_one_is_refused():
    taken = dict(links={"tsw-web"}, netns={"tenant-web"}, inside={"tenant-web": {"tsw-web"}})
    assert [e.code for e in validate(GOOD, facts=FakeHost(**taken), check_sockets=False).errors] \
        == ["EEXIST"]
    left = Left(links={"tsw-web"}, netns={"tenant-web"})
    assert validate(GOOD, facts=HostWithState(left, **taken), check_sockets=False).ok
    report = validate(GOOD, facts=HostWithState(Left(live_pid=4242)))
    assert [(e.key, e.code) for e in report.errors] == [("daemon.state_file", "EBUSY")]
    assert "pid 4242" in report.errors[0].reason
