"""Fixtures shared across the test tree.

The tree mirrors the packages: tests/model, tests/config, tests/compile, tests/control,
tests/daemon, tests/kernel, tests/rig, tests/bench and tests/fastpath (every fast-path test
body runs against the reference and the compiled core); tests/e2e holds the root-only tests
with real kernel network stacks.  Helpers a few modules share are in tests/support/;
fixtures of one directory in its own conftest.py.
"""
import signal

import pytest


def _io_backends():
    import fastpath
    return fastpath.io_backends()


@pytest.fixture(params=_io_backends())
def backend(request):
    """The PacketLoop I/O backend a test runs on ("io_uring", "epoll"): each test using it
    runs on every backend built here."""
    return request.param


@pytest.fixture
def ctrl_c():
    """Ctrl-C raises KeyboardInterrupt during the test, in this process and in the Python
    processes it starts, even where the suite itself was started with SIGINT ignored (a
    background job of a non-interactive shell inherits SIG_IGN, and Python then installs
    no handler; an ignored signal stays ignored across exec, a handled one does not)."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)
