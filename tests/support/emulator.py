"""A stand-in for a virtual machine's emulator, for the ``attach`` port tests: a process
that creates and holds two TAPs and carries frames between their fds, as QEMU carries
them between its TAP and the guest's NIC.

    python -m tests.support.emulator HOST_TAP GUEST_TAP

``HOST_TAP`` stays in the caller's namespace (the switch attaches to it, as to a VM's
TAP); the test moves ``GUEST_TAP`` into a kernel namespace that plays the guest (its
stack configures itself by DHCP).  The process prints ``ready`` once both exist, and
runs until killed; its TAPs go with it.
"""
import fcntl
import os
import select
import struct
import sys

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000


def open_tap(name: str) -> int:
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
    os.set_blocking(fd, False)
    return fd


def carry(src: int, dst: int) -> None:
    """Every frame waiting on ``src`` written to ``dst`` (a full queue drops it, as a
    NIC's would)."""
    while True:
        try:
            frame = os.read(src, 65536)
        except BlockingIOError:
            return
        try:
            os.write(dst, frame)
        except (BlockingIOError, OSError):
            pass


def main(host_name: str, guest_name: str) -> None:
    host, guest = open_tap(host_name), open_tap(guest_name)
    print("ready", flush=True)
    other = {host: guest, guest: host}
    while True:
        ready, _, _ = select.select([host, guest], [], [])
        for fd in ready:
            carry(fd, other[fd])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
