"""The daemon's state file (pyctl.daemon.ownership) without kernel objects: one daemon per
state file, what a dead one's file may claim, and the file gone after a clean stop.
(tests/e2e/test_crash_recovery.py reclaims real namespaces and links.)"""
import json
import logging
import os

import pytest

from pyctl import errors, kernel
from pyctl.daemon import ownership
from pyctl.daemon.ownership import Ownership


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / "run" / "control.state")


def _write(path, **doc):
    base = {"version": 1, "pid": 1, "boot_id": ownership._boot_id(), "tokens": [],
            "netns": {}, "entered": {}}
    with open(path, "w") as f:
        json.dump({**base, **doc}, f)


def test_one_daemon_per_state_file(path):
    first = Ownership.open(path, kernel.CleanupRegistry())
    try:
        with pytest.raises(errors.Busy, match=r"pid \d+"):
            Ownership.open(path, kernel.CleanupRegistry())
    finally:
        first.close()
    second = Ownership.open(path, kernel.CleanupRegistry())    # the lock went with it
    second.close()


def test_the_file_says_who_and_goes_after_a_clean_stop(path):
    owner = Ownership.open(path, kernel.CleanupRegistry())
    doc = json.loads(open(path).read())
    assert doc["tokens"] == [owner.token] and doc["netns"] == {} and doc["pid"] > 0
    assert owner.marker == "tapswitch " + owner.token
    owner.close()
    assert not os.path.exists(path)


def test_a_dead_daemons_namespace_that_is_gone_is_forgotten(path):
    os.makedirs(os.path.dirname(path))
    _write(path, netns={"tsgone-no-such-netns": 12345}, tokens=["old"])
    owner = Ownership.open(path, kernel.CleanupRegistry())
    try:
        assert owner.claim_netns("tsgone-no-such-netns") is None     # name gone: not its
        owner.finish_reclaim()
        assert json.loads(open(path).read())["netns"] == {}
        assert json.loads(open(path).read())["tokens"] == [owner.token]
    finally:
        owner.close()


@pytest.mark.parametrize("doc", [
    {"version": 2},
    {"netns": ["x"]},
    {"netns": {"x": "cookie"}},
    {"netns": {"../../etc": 5}},
    {"tokens": [1]},
])
def test_a_file_it_does_not_understand_claims_nothing(path, caplog, doc):
    os.makedirs(os.path.dirname(path))
    _write(path, **doc)
    caplog.set_level(logging.WARNING)
    owner = Ownership.open(path, kernel.CleanupRegistry())
    try:
        assert owner.netns == {} and "nothing in it is reclaimed" in caplog.text
    finally:
        owner.close()


def test_a_file_of_another_boot_claims_nothing(path):
    os.makedirs(os.path.dirname(path))
    _write(path, boot_id="another-boot", netns={"tsx": 5}, tokens=["t"])
    owner = Ownership.open(path, kernel.CleanupRegistry())
    try:
        assert owner.netns == {} and owner.claim_netns("tsx") is None
    finally:
        owner.close()


def test_state_path_defaults_beside_the_socket():
    from pyctl.config import DaemonSettings, load_config
    assert DaemonSettings(socket="/run/ts/control.sock").state_path == "/run/ts/control.state"
    assert load_config('[daemon]\nstate_file = "/var/lib/ts/s.json"\n').daemon.state_path == \
        "/var/lib/ts/s.json"
