"""The metrics listener: GET /metrics only, the exposition content type, bounded requests
(503 beyond them, counted), a render that fails is a 503, close() frees the port."""
import http.client
import socket
import threading

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pyctl.daemon.metrics_http import MetricsListener
from pyctl.ops.exposition import CONTENT_TYPE, Family, render

TEXT = render([Family("tapswitch_x_total", "counter", "a counter").add(3, namespace="web")])


@pytest.fixture
def listener():
    made = []

    def make(render_text=lambda: TEXT, **kwargs):
        lst = MetricsListener(("127.0.0.1", 0), render_text, **kwargs).start()
        made.append(lst)
        return lst
    yield make
    for lst in made:
        lst.close()


def request(lst, method="GET", path="/metrics"):
    conn = http.client.HTTPConnection(*lst.address, timeout=10)
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def test_get_metrics_is_the_exposition_text(listener):
    lst = listener()
    status, headers, body = request(lst)
    assert status == 200 and headers["Content-Type"] == CONTENT_TYPE
    (family,) = text_string_to_metric_families(body.decode())
    assert family.name == "tapswitch_x" and family.samples[0].value == 3
    assert request(lst, path="/metrics?name[]=x")[0] == 200
    status, _, body = request(lst, "HEAD")
    assert status == 200 and body == b""


def test_other_paths_and_methods_are_refused(listener):
    lst = listener()
    assert request(lst, path="/")[0] == 404
    assert request(lst, path="/metrics/../admin")[0] == 404
    status, headers, _ = request(lst, "POST")
    assert status == 405 and headers["Allow"] == "GET, HEAD"
    assert dict(lst.requests) == {404: 2, 405: 1}


def test_a_render_that_fails_is_a_503(listener):
    def broken():
        raise TimeoutError("the daemon did not answer")
    assert request(listener(broken))[0] == 503


def test_requests_beyond_the_bound_get_503_at_once(listener):
    release = threading.Event()
    entered = threading.Semaphore(0)

    def slow():
        entered.release()
        release.wait(10)
        return TEXT
    lst = listener(slow, max_connections=2)
    results = []
    threads = [threading.Thread(target=lambda: results.append(request(lst)[0])) for _ in range(2)]
    for t in threads:
        t.start()
    for _ in range(2):
        assert entered.acquire(timeout=10)           # both slots busy
    assert request(lst)[0] == 503                    # the third: refused at once
    release.set()
    for t in threads:
        t.join(10)
    assert results == [200, 200]
    assert lst.requests[503] == 1 and lst.requests[200] == 2
    assert request(lst)[0] == 200                    # slots are back


def test_a_client_that_sends_nothing_is_dropped_after_the_timeout(listener):
    lst = listener(max_connections=1, timeout=0.3)
    with socket.create_connection(lst.address, timeout=5) as idle:
        assert idle.recv(100) == b""                 # closed by the server, slot freed
    assert request(lst)[0] == 200


def test_close_frees_the_address():
    lst = MetricsListener(("127.0.0.1", 0), lambda: TEXT).start()
    address = lst.address
    lst.close()
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(address)
