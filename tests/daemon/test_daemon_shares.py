"""The daemon gives each namespace its share of the slow path from [daemon.slowpath.shares]
(the packet loop refuses what is over it: tests/fastpath/test_slow_shares.py); no root
needed: nothing is opened."""
import dataclasses

from fastpath.reasons import SLOW_SHARES
from pyctl import Switch
from pyctl.config import DaemonSettings, SlowPathLimits
from pyctl.daemon.daemon import Daemon


def test_the_configured_shares_reach_the_datapath_and_stats(tmp_path):
    shares = {**SlowPathLimits().shares, "arp": (10, 4), "other": (0, 0)}
    settings = dataclasses.replace(DaemonSettings(socket=str(tmp_path / "s.sock")),
                                   slowpath=SlowPathLimits(shares=shares))
    daemon = Daemon(Switch(), settings)
    try:
        assert daemon.datapath.slow_shares() == {name: (float(rate), float(burst))
                                                 for name, (rate, burst) in shares.items()}
        stats = daemon.stats()["slowpath_shares"]
        assert stats["arp"] == {"rate": 10.0, "burst": 4.0}
        assert stats["other"] == {"rate": 0.0, "burst": 0.0}
        assert list(stats) == [share.name for share in SLOW_SHARES]
    finally:
        daemon.close(report=False)
