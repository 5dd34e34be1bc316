"""Fixtures shared across the test tree.

The tree mirrors the packages: tests/model, tests/config, tests/compile, tests/control,
tests/daemon, tests/kernel, tests/rig, tests/bench and tests/fastpath (every fast-path test
body runs against the reference and the compiled core); tests/e2e holds the root-only tests
with real kernel network stacks.  Helpers a few modules share are in tests/support/;
fixtures of one directory in its own conftest.py.
"""
import pytest


def _io_backends():
    import fastpath
    return fastpath.io_backends()


@pytest.fixture(params=_io_backends())
def backend(request):
    """The PacketLoop I/O backend a test runs on ("io_uring", "epoll"): each test using it
    runs on every backend built here."""
    return request.param
