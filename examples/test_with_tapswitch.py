"""A complete example of testing with tapswitch's pytest plugin (copy it into your suite).

Installing tapswitch makes the fixtures available; run as root:

    python -m pytest examples/test_with_tapswitch.py
    python -m pytest examples/test_with_tapswitch.py --tapswitch-mode=process   # child daemon

Each tenant is a real Linux network stack (its own kernel network namespace)
behind a TAP of the switch; everything is removed when each test ends.
"""
import socket
import threading


def test_a_datagram_from_a_reaches_b(tapswitch_topology):
    # Ready-made, on a free subnet (say 10.23.7.0/24, tapswitch_topology.subnet): the gateway
    # .1 on the switch, tenants a (.2) and b (.3).
    a, b = tapswitch_topology.tenants["a"], tapswitch_topology.tenants["b"]
    with b.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx, \
            a.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        rx.bind((b.ip, 7000))
        rx.settimeout(2)
        tx.sendto(b"hello", (b.ip, 7000))
        data, (source, _) = rx.recvfrom(100)
    assert (data, source) == (b"hello", a.ip)


def test_commands_and_functions_run_inside_a_tenant(tapswitch_topology):
    a = tapswitch_topology.tenants["a"]
    routes = a.run(["ip", "route", "show", "default"]).stdout   # a command
    assert f"via {tapswitch_topology.gateway}" in routes
    assert a.call(socket.if_nameindex)[0][1] == "lo"            # a function (run in a fork)


def test_tcp_through_the_switch(tapswitch_topology):
    a, b = tapswitch_topology.tenants["a"], tapswitch_topology.tenants["b"]
    payload = bytes(range(256)) * 4096                  # 1 MiB
    with b.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind((b.ip, 7001))                       # a socket made in b's stack ...
        server.listen()
        server.settimeout(10)
        sender = threading.Thread(target=_send_all, args=(server, payload))
        sender.start()                                  # ... served by a thread of this test
        with a.socket(socket.AF_INET, socket.SOCK_STREAM) as client:
            client.settimeout(10)
            client.connect((b.ip, 7001))
            received = b"".join(iter(lambda: client.recv(1 << 16), b""))
        sender.join()
    assert received == payload


def _send_all(server, payload):
    conn, _ = server.accept()
    with conn:
        conn.sendall(payload)


def test_isolated_networks_with_the_same_addresses(tapswitch_factory):
    # Custom topologies: two sibling L2 networks, both 10.0.0.0/24.
    topo = tapswitch_factory()
    topo.l2("red", "10.0.0.1/24")
    topo.l2("blue", "10.0.0.1/24")
    red1, red2 = topo.tenant("r1", "10.0.0.2/24", parent="red"), topo.tenant("r2", "10.0.0.3/24", parent="red")
    blue1 = topo.tenant("b1", "10.0.0.3/24", parent="blue")
    topo.start()
    with red2.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx_red, \
            blue1.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx_blue, \
            red1.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        for rx in (rx_red, rx_blue):
            rx.bind(("10.0.0.3", 7002))
            rx.settimeout(0.5)
        tx.sendto(b"for red", ("10.0.0.3", 7002))
        assert rx_red.recv(100) == b"for red"
        try:
            rx_blue.recv(100)
            raise AssertionError("blue received red's datagram")
        except socket.timeout:
            pass


def test_live_changes_and_counters(tapswitch_topology):
    topo = tapswitch_topology
    spare = f"{topo.subnet.network_address + 9}/{topo.subnet.prefixlen}"
    topo.address_add("init", spare)             # a spare address of the switch ...
    topo.push(spare, "b")                       # ... moved into b, live
    assert spare in topo.addresses("b")
    assert spare in topo.tenants["b"].run(["ip", "-4", "addr"]).stdout
    topo.destroy("b")                           # b's addresses go back to its parent
    assert spare in topo.addresses("init")
    assert "b" not in topo.tenants
    assert "a" in topo.counters()["namespaces"]
