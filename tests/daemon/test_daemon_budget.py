"""The daemon's slow-path budget ([daemon.slowpath] frames_per_second): frames
beyond it are counted, not handled (no root needed: nothing is opened)."""
import dataclasses

from fastpath import verdicts
from pyctl import Switch
from pyctl.config import DaemonSettings, SlowPathLimits
from pyctl.daemon.daemon import Daemon
from pyctl.daemon.slowpath import Output


def test_frames_over_the_budget_are_counted_not_handled(tmp_path):
    settings = dataclasses.replace(DaemonSettings(socket=str(tmp_path / "s.sock")),
                                   slowpath=SlowPathLimits(frames_per_second=100))
    daemon = Daemon(Switch(), settings)
    handled = []
    daemon.slowpath.handle = lambda port, reason, data: handled.append(data) or Output([], [])
    try:
        frames = [(0, verdicts.REASON_LOCAL, b"%d" % i) for i in range(50)]
        daemon._slow_path(frames)
        assert len(handled) == 10                      # the burst: a tenth of a second's worth
        assert daemon.slow_frames_over_budget == 40
        assert daemon.stats()["slowpath_over_budget"] == 40
    finally:
        daemon.close(report=False)
