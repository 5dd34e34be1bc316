"""The Prometheus text format as prometheus-client's parser reads it."""
import math

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pyctl.ops.exposition import Family, render


def parse(text):
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_families_samples_and_escaped_labels_parse_back():
    frames = Family("tapswitch_namespace_rx_frames_total", "counter", "frames received from a namespace")
    frames.add(12, namespace="web").add(3, namespace='we"ird\\name\nx')
    size = Family("tapswitch_table_entries", "gauge", "entries in a table")
    size.add(2.5, table="demux").add(float("inf"), table="x").add(float("nan"), table="y")
    empty = Family("tapswitch_empty_total", "counter", "a family with no samples yet")
    families = parse(render([frames, size, empty]))
    got = families["tapswitch_namespace_rx_frames"]
    assert got.type == "counter" and got.documentation == "frames received from a namespace"
    assert [(s.labels["namespace"], s.value) for s in got.samples] == [
        ("web", 12.0), ('we"ird\\name\nx', 3.0)]
    values = {s.labels["table"]: s.value for s in families["tapswitch_table_entries"].samples}
    assert values["demux"] == 2.5 and values["x"] == math.inf and math.isnan(values["y"])
    assert families["tapswitch_empty"].samples == []


def test_bad_names_and_duplicate_families_are_refused():
    with pytest.raises(ValueError):
        Family("bad name", "gauge", "")
    with pytest.raises(ValueError, match="_total"):
        Family("tapswitch_frames", "counter", "")
    with pytest.raises(ValueError):
        Family("tapswitch_x", "histogram", "")
    with pytest.raises(ValueError):
        Family("tapswitch_x", "gauge", "").add(1, **{"__reserved": "x"})
    f = Family("tapswitch_x", "gauge", "")
    with pytest.raises(ValueError, match="twice"):
        render([f, f])
