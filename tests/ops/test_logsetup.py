"""Logging set-up: text and JSON lines, the audit fields, rate limiting of repeated warnings."""
import io
import json
import logging

import pytest

from pyctl.ops import logsetup


@pytest.fixture
def configured():
    stream = io.StringIO()
    logger = logging.getLogger(logsetup.ROOT)
    saved = (logger.level, logger.propagate, list(logger.handlers))

    def setup(level="info", fmt="text"):
        stream.seek(0)
        stream.truncate()
        logsetup.configure(level, fmt, stream=stream)
        return stream
    yield setup
    logger.handlers[:] = saved[2]
    logger.setLevel(saved[0])
    logger.propagate = saved[1]


def test_text_lines_have_a_timestamp_level_and_logger(configured):
    out = configured("info", "text")
    logging.getLogger("tapswitch.audit").info("admin created %s", "web")
    logging.getLogger("tapswitch.daemon").debug("not shown at info")
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    stamp, level, name, text = lines[0].split(" ", 3)
    assert stamp.endswith("Z") and "T" in stamp
    assert (level, name, text) == ("INFO", "tapswitch.audit:", "admin created web")


def test_json_lines_parse_and_carry_extra_fields(configured):
    out = configured("debug", "json")
    log = logging.getLogger("tapswitch.audit")
    log.info("%s: %s", "web", "address-add", extra={"namespace": "web", "pid": 42, "uid": 0,
                                                      "verb": "address-add", "result": "EPERM"})
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("tapswitch.daemon").exception("it failed")
    first, second = [json.loads(line) for line in out.getvalue().splitlines()]
    assert first["msg"] == "web: address-add" and first["logger"] == "tapswitch.audit"
    assert {k: first[k] for k in ("namespace", "pid", "uid", "verb", "result")} == {
        "namespace": "web", "pid": 42, "uid": 0, "verb": "address-add", "result": "EPERM"}
    assert second["level"] == "ERROR" and "ValueError: boom" in second["exc"]


def test_configure_twice_keeps_one_handler(configured):
    configured()
    out = configured()
    logging.getLogger("tapswitch.x").warning("once")
    assert out.getvalue().count("once") == 1


def test_bad_level_or_format_is_refused():
    with pytest.raises(ValueError, match="log level"):
        logsetup.configure("loud", "text")
    with pytest.raises(ValueError, match="log format"):
        logsetup.configure("info", "xml")


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def record(msg, *args, level=logging.WARNING, name="tapswitch.daemon"):
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_a_flood_of_one_warning_is_cut_to_the_burst_then_the_rate():
    clock = Clock()
    f = logsetup.RateLimitFilter(rate=2.0, burst=5, clock=clock)
    passed = [f.filter(record("bad frame from %s", f"10.0.0.{k}")) for k in range(1000)]
    assert sum(passed) == 5
    assert f.suppressed_total == 995
    clock.now += 1.0                                   # two more tokens
    r = record("bad frame from %s", "10.0.0.9")
    assert f.filter(r)
    assert r.suppressed == 995 and "(995 similar messages suppressed)" in r.getMessage()
    assert f.filter(record("bad frame from %s", "x"))
    assert not f.filter(record("bad frame from %s", "x"))


def test_other_templates_and_info_records_are_not_held_back():
    f = logsetup.RateLimitFilter(rate=0.0, burst=1, clock=Clock())
    assert f.filter(record("one kind"))
    assert not f.filter(record("one kind"))
    assert f.filter(record("another kind"))
    assert all(f.filter(record("audit line", level=logging.INFO)) for _ in range(100))


def test_the_template_table_is_bounded():
    f = logsetup.RateLimitFilter(rate=0.0, burst=1, max_keys=8, clock=Clock())
    for k in range(100):
        f.filter(record(f"preformatted {k}"))
    assert len(f._buckets) == 8


def test_log_limiter_holds_back_one_call_site_at_any_level_whatever_the_handler():
    clock = Clock()
    logger = logging.getLogger("tapswitch.test.limiter")
    logger.propagate = False
    caught = []
    handler = logging.Handler()
    handler.emit = caught.append
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        limiter = logsetup.LogLimiter(logger, rate=1.0, burst=3, clock=clock)
        for k in range(500):
            limiter.log(logging.INFO, "connection from %s", k)
        assert len(caught) == 3 and limiter.suppressed == 497
        clock.now += 1.0
        limiter.log(logging.INFO, "connection from %s", "late")
        assert "(497 similar messages suppressed)" in caught[-1].getMessage()
        limiter.log(logging.DEBUG, "below the level: not even counted")
        assert limiter.suppressed == 497
    finally:
        logger.removeHandler(handler)


def test_every_logger_of_the_project_is_under_tapswitch():
    import ast
    import pathlib
    root = pathlib.Path(__file__).resolve().parents[2]
    names = {}
    for path in [*root.joinpath("pyctl").rglob("*.py"), *root.joinpath("fastpath").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "getLogger"
                    and node.args and isinstance(node.args[0], ast.Constant)):
                names[node.args[0].value] = path.name
    assert names and all(n == logsetup.ROOT or n.startswith(logsetup.ROOT + ".")
                         for n in names), names
