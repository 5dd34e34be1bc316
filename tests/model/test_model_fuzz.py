"""Whatever JSON-like values reach a verb (the control socket passes them
through), the model answers with a result or a TapswitchError, never another
exception, and a refusal changes nothing."""
import copy
import inspect

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.model import tenants
from pyctl import errors

JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 2**33) | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.sampled_from(["init", "web", "db", "lab", "probe", "10.0.0.5/24", "10.0.0.5",
                       "239.1.1.1", "default", "l2", "l3", "tap-web", "02:00:00:00:00:09"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=4)

VERBS = ["namespace", "scope_of", "create", "destroy", "address_add", "address_del", "push",
         "pull", "assign_and_push", "addresses", "owner", "may_send_from", "route_add",
         "route_del", "routes", "port_add", "port_del", "port", "ports", "join", "leave",
         "groups", "members", "as_namespace"]


def arity(verb):
    """(required, total) positional parameters of a verb."""
    params = list(inspect.signature(getattr(tenants(), verb)).parameters.values())
    return sum(p.default is p.empty for p in params), len(params)


ARITY = {verb: arity(verb) for verb in VERBS}


@settings(max_examples=400, deadline=None)
@given(verb=st.sampled_from(VERBS), data=st.data(), acting=st.sampled_from(
    [None, "web", "lab"]))
def test_any_arguments_give_a_result_or_a_clean_refusal(verb, data, acting):
    sw = tenants()
    sw.port_add("tap-web", "web")
    low, high = ARITY[verb]
    args = data.draw(st.lists(JSONISH, min_size=low, max_size=high))
    target = sw if acting is None else sw.as_namespace(acting)
    before, state = sw.snapshot(), copy.deepcopy(sw._state)
    try:
        getattr(target, verb)(*args)
    except errors.TapswitchError as error:
        assert error.code and error.message
        assert sw.snapshot() == before and sw._state == state
