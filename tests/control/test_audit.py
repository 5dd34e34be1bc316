"""The audit log of control operations: who did what with what result, at INFO for changes
and refusals; the count by verb and result; JSON lines from `tapswitch --log-format json`."""
import json
import logging
import os

import pytest

from pyctl import errors
from pyctl.cli import main
from pyctl.control.audit import UNKNOWN_VERB
from pyctl.control.client import ControlClient
from pyctl.control import protocol


def audit_records(caplog):
    return [r for r in caplog.records if r.name == "tapswitch.audit"]


def test_a_change_is_logged_at_info_with_who_what_and_result(served, caplog):
    with caplog.at_level(logging.INFO, logger="tapswitch.audit"):
        with ControlClient(served.path) as ctl:
            ctl.call("assign-and-push", address="10.1.0.30/24", namespace="web")
    (record,) = audit_records(caplog)
    assert record.levelno == logging.INFO
    assert (record.namespace, record.admin, record.socket) == ("init", True, served.path)
    assert (record.pid, record.uid, record.gid) == (os.getpid(), os.getuid(), os.getgid())
    assert (record.verb, record.result, record.error) == ("assign-and-push", "ok", None)
    assert record.arguments == {"address": "10.1.0.30/24", "namespace": "web"}
    assert record.getMessage().endswith(
        "assign-and-push address=10.1.0.30/24 namespace=web -> ok")


def test_reads_are_debug_and_refusals_info_whatever_the_verb(served, caplog):
    web = served.server.bind_namespace("web")
    with caplog.at_level(logging.INFO, logger="tapswitch.audit"):
        with ControlClient(served.path) as ctl:
            ctl.call("namespaces")                                      # a read: not at INFO
            with pytest.raises(errors.NotFound):
                ctl.call("show", namespace="nowhere")                   # a refused read: INFO
        with ControlClient(web) as ctl:
            with pytest.raises(errors.PermissionDenied):
                ctl.call("address-add", namespace="web", address="10.1.0.99/24")
            with pytest.raises(protocol.UnknownVerb):
                ctl.call("format-disk")
    got = [(r.namespace, r.verb, r.result) for r in audit_records(caplog)]
    assert got == [("init", "show", "ENOENT"), ("web", "address-add", "EPERM"),
                   ("web", "format-disk", "ENOSYS")]
    refused = audit_records(caplog)[1]
    assert refused.admin is False and refused.socket == web
    assert "web (pid=" in refused.getMessage() and "-> EPERM: " in refused.getMessage()


def test_operations_are_counted_by_verb_and_result(served):
    with ControlClient(served.path) as ctl:
        ctl.call("ping")
        ctl.call("ping")
        with pytest.raises(errors.AlreadyExists):
            ctl.call("create", name="web", kind="l3", parent="tenants")
        for made_up in ("a", "b", "c"):
            with pytest.raises(protocol.UnknownVerb):
                ctl.call(made_up)
    counts = served.server.dispatcher.audit.snapshot()
    assert counts[("init", "ping", "ok")] == 2
    assert counts[("init", "create", "EEXIST")] == 1
    assert counts[("init", UNKNOWN_VERB, "ENOSYS")] == 3 and ("init", "a", "ENOSYS") not in counts


def test_log_format_json_gives_one_object_per_line(served, capsys):
    # The server runs in this process: the command's handler carries its audit records.
    code = main(["--log-format", "json", "--log-level", "info", "ctl", "--socket", served.path,
                 "create", "cache", "l3", "--parent", "tenants"])
    assert code == 0
    lines = capsys.readouterr().err.splitlines()
    records = [json.loads(line) for line in lines]          # every line parses
    audit = [r for r in records if r["logger"] == "tapswitch.audit"]
    assert audit and audit[0]["verb"] == "create" and audit[0]["result"] == "ok"
    assert audit[0]["arguments"] == {"name": "cache", "kind": "l3", "parent": "tenants"}
    assert all(r["ts"].endswith("Z") and r["level"] for r in records)


def test_logging_options_after_the_command_and_restored_after(served, capsys):
    root = logging.getLogger("tapswitch")
    before = list(root.handlers)
    code = main(["ctl", "--socket", served.path, "--log-level", "debug", "--log-format", "json",
                 "ping"])
    assert code == 0
    err = capsys.readouterr().err
    assert any(json.loads(line)["verb"] == "ping" for line in err.splitlines()
               if '"tapswitch.audit"' in line)
    assert root.handlers == before and root.propagate
