"""A control server in a process whose file descriptors are nearly all taken by something
else (``python -m tests.support.fd_starved SOCKET SECONDS``): it binds ``web``'s socket,
leaves ``FREE`` fds, serves for SECONDS, then prints its stats as one JSON line."""
import json
import logging
import os
import resource
import sys
import time

from pyctl.control.server import ControlServer
from pyctl.model.switch import Switch
from tests.support.control import tenants

FREE = 3


def main(path: str, seconds: float) -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
    server = ControlServer(tenants(Switch()), path)
    server.bind_namespace("web")
    hogs = []
    try:
        while True:
            hogs.append(os.open("/", os.O_RDONLY))
    except OSError:
        pass
    for fd in hogs[-FREE:]:
        os.close(fd)
    print("ready", flush=True)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        server.poll(deadline - time.monotonic())
    print(json.dumps(server.stats()), flush=True)
    server.close()


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]))
