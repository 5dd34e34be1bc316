"""Choosing the packet loop's I/O backend for the daemon: the [daemon] io_backend key
(checked like every other key), else the TAPSWITCH_IO_BACKEND environment variable,
else "auto"; the daemon's loop runs what was chosen, or refuses to start."""
import pytest

import fastpath
from pyctl.config import IO_BACKENDS, ConfigError, DaemonSettings, load_config
from pyctl.daemon.daemon import Daemon
from pyctl.errors import NotSupported
from pyctl.model.switch import Switch


def test_config_names_the_same_backends_as_the_fast_path():
    assert IO_BACKENDS == fastpath.IO_BACKENDS


@pytest.mark.parametrize("name", IO_BACKENDS)
def test_io_backend_key_is_read(name):
    assert load_config(f'[daemon]\nio_backend = "{name}"\n').daemon.io_backend == name


def test_io_backend_defaults_to_unset():
    assert load_config("").daemon.io_backend is None


@pytest.mark.parametrize("value, fragment", [('"uring"', "expected one of auto, epoll, io_uring"),
                                             ("1", "expected")])
def test_a_bad_io_backend_is_refused_with_its_line(value, fragment):
    with pytest.raises(ConfigError) as info:
        load_config(f"[daemon]\nbatch_size = 32\nio_backend = {value}\n")
    assert info.value.key == "daemon.io_backend" and info.value.line == 3
    assert fragment in info.value.reason


@pytest.mark.parametrize("setting, env, want", [
    ("epoll", "io_uring", "epoll"),               # the setting wins
    (None, "epoll", "epoll"),
    (None, None, fastpath.io_backends()[0]),     # auto: the preferred one that runs here
])
def test_the_daemon_runs_the_chosen_backend(monkeypatch, setting, env, want):
    if env is None:
        monkeypatch.delenv(fastpath.IO_BACKEND_ENV, raising=False)
    else:
        monkeypatch.setenv(fastpath.IO_BACKEND_ENV, env)
    daemon = Daemon(Switch(), DaemonSettings(io_backend=setting), max_namespaces=8, max_ports=8)
    try:
        assert daemon.loop.backend == want
    finally:
        daemon.close(report=False)


def test_io_uring_asked_where_it_cannot_run_is_refused():
    if "io_uring" in fastpath.io_backends():
        pytest.skip("io_uring runs here")
    with pytest.raises(NotSupported, match="io_uring"):
        Daemon(Switch(), DaemonSettings(io_backend="io_uring"), max_namespaces=8, max_ports=8)
