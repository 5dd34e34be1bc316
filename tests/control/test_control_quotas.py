"""Quotas over the control socket (issue 14 item 16): set by the parent with quota-set, read
with quota; a delegated L2's client that would pass one gets EDQUOT naming it, another L2's
client is unaffected; socket-add counts against the sockets quota; `tapswitch ctl`."""
import pytest

from pyctl import errors
from pyctl.cli import main
from pyctl.control.client import ControlClient


@pytest.fixture
def admin(served):
    with ControlClient(served.path) as client:
        yield client


def test_a_delegated_client_is_held_to_its_quota_and_others_are_not(served, admin):
    admin.call("quota-set", namespace="tenants", limits={"namespaces": 3, "sockets": 1})
    tenants_path = served.server.bind_namespace("tenants")
    other_path = served.server.bind_namespace("other")
    with ControlClient(tenants_path) as tenant, ControlClient(other_path) as other:
        tenant.call("create", name="cache", kind="l3")            # web, db, cache: 3
        with pytest.raises(errors.QuotaExceeded) as refused:
            tenant.call("create", name="more", kind="l3")
        assert "quota namespaces=3 of 'tenants'" in refused.value.message
        for i in range(5):                                         # "other" has no quota
            other.call("create", name=f"o{i}", kind="l3")
        tenant.call("socket-add", namespace="web")
        with pytest.raises(errors.QuotaExceeded, match="quota sockets=1 of 'tenants'"):
            tenant.call("socket-add", namespace="db")
        assert "db" not in served.server.bindings()
        with pytest.raises(errors.PermissionDenied, match="its own quotas"):
            tenant.call("quota-set", namespace="tenants", limits={"namespaces": 100})
        seen = tenant.call("quota")
    assert seen["namespace"] == "tenants" and seen["quota"]["namespaces"] == 3
    assert seen["usage"]["namespaces"] == 3 and seen["usage"]["sockets"] == 1
    admin.call("socket-del", namespace="web")                      # the socket's slot frees
    assert admin.call("quota", namespace="tenants")["usage"]["sockets"] == 0


def test_a_refused_quota_set_changes_nothing(served, admin):
    admin.call("quota-set", namespace="tenants", limits={"routes": 2})
    with pytest.raises(errors.InvalidArgument, match="unknown quota"):
        admin.call("quota-set", namespace="tenants", limits={"routes": 1, "tables": 3})
    with pytest.raises(errors.InvalidArgument, match="at least one"):
        admin.call("quota-set", namespace="tenants")
    assert admin.call("quota", namespace="tenants")["quota"]["routes"] == 2


def test_ctl_sets_and_shows_quotas(served, capsys):
    code = main(["ctl", "--socket", served.path, "quota-set", "tenants", "-q", "routes=4",
                 "-q", "ports=none", "--quota", "namespaces=2"])
    assert code == 0
    assert main(["ctl", "--socket", served.path, "quota", "tenants"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "tenants:" and lines[1].split() == ["QUOTA", "LIMIT", "USED", "EFFECTIVE"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:]}
    assert rows["routes"] == ["4", "0", "4"] and rows["namespaces"] == ["2", "2", "2"]
    assert rows["ports"] == ["-", "1", "-"]
    assert main(["ctl", "--socket", served.path, "create", "x", "l3", "--parent",
                 "tenants"]) == 1
    assert "tapswitch: EDQUOT: quota namespaces=2 of 'tenants'" in capsys.readouterr().err
