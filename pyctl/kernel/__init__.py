"""Kernel plumbing with pyroute2: network namespaces, links moved into them,
veth pairs, Linux bridges, and a cleanup registry that removes all of it.

Used by the daemon (TAP ports moved into a tenant's namespace), the demo, the
end-to-end tests, the test-rig API and bench/. Verbs read like ``ip``::

    ns = NetNamespace()                       # unique name, lo up, registered
    a, b = create_veth(unique_name("va"), unique_name("vb"), netns_b=ns)
    ns.configure(b, address="10.1.0.2/24", gateway="10.1.0.1")
    with ns.socket(socket.AF_INET, socket.SOCK_DGRAM) as s: ...
    ns.call(func, arg)                        # Python callable in a forked child
    ns.run(["ip", "addr"])                    # a command inside the namespace
    registry.cleanup()                        # everything, in reverse order

Errors are both ``pyctl.errors`` classes (stable ``code``) and the matching
OSError (kernel ``errno``): ``KernelNotFound`` is a NotFound and a
FileNotFoundError, and so on; bad arguments raise ``BadArgument``
(InvalidArgument and ValueError). Messages name the object and namespace.
A namespace object never changes the caller's own namespace: work
inside it runs on a helper thread or a forked child (see netns_exec).
"""

from pyctl.kernel.cleanup import CleanupRegistry, registry, stop_process
from pyctl.kernel.errors import (
                                 BadArgument,
                                 KernelBusy,
                                 KernelError,
                                 KernelExists,
                                 KernelNotFound,
                                 KernelPermission,
                                 kernel_error,
)
from pyctl.kernel.links import LinkStats
from pyctl.kernel.names import (
                                 IFNAMSIZ,
                                 MAX_IFNAME,
                                 NETNS_RUN_DIR,
                                 check_ifname,
                                 check_netns_name,
                                 process_tag,
                                 unique_name,
)
from pyctl.kernel.netns import (
                                 HostNamespace,
                                 NetNamespace,
                                 create_bridge,
                                 create_veth,
                                 host,
                                 list_netns,
                                 move_link,
                                 set_master,
)

__all__ = ["CleanupRegistry", "registry", "stop_process", "BadArgument", "KernelBusy", "KernelError",
           "KernelExists", "KernelNotFound", "KernelPermission", "kernel_error", "LinkStats",
           "IFNAMSIZ", "MAX_IFNAME", "NETNS_RUN_DIR", "check_ifname", "check_netns_name",
           "process_tag", "unique_name", "HostNamespace", "NetNamespace", "create_bridge",
           "create_veth", "host", "list_netns", "move_link", "set_master"]
