"""The reload's diff: from any valid topology to any other, the steps make the running model
the file's, touching nothing that stays; learned memberships are left to the snooper."""
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pyctl.config import check, load_config
from pyctl.config.diff import reload_steps, same_state
from pyctl.config.validate import validate
from tests.support import config_text

L2S = ("t1", "t2", "t3")
L3S = ("a", "b", "c", "d")
GROUPS = ("239.1.1.1", "239.1.1.2", "ff05::1:3")


@st.composite
def topologies(draw):
    """TOML text of a random valid-looking dual-stack topology (the validator has the last
    word): L2s with an IPv4 subnet and maybe an IPv6 one and router advertisements, L3s with
    addresses of either family, ports whose kernel side has one address or both families',
    routes of both families, uplinks of the port kinds; L2s that let directed broadcasts in
    and have kernel namespaces delegated, L3 ports marked as DHCP servers (issue 14's
    isolation keys)."""
    out, l2s = [], []
    if draw(st.booleans()):
        out.append(f"[root]\nadvertise = {str(draw(st.booleans())).lower()}\n")
    for k, name in enumerate(L2S):
        if not draw(st.booleans()):
            continue
        parent = draw(st.sampled_from(["init", *(n for n, _, _ in l2s)]))
        quota = draw(st.sampled_from(["", "quota = { namespaces = 8 }\n", "quota = { routes = 4 }\n"]))
        six = draw(st.booleans())
        addresses = f'"10.{k + 1}.0.1/24"' + (f', "fd00:{k + 1}::1/64"' if six else "")
        advertise = draw(st.sampled_from(["", "advertise = true\n", "advertise = false\n"]))
        directed = draw(st.sampled_from(["", "directed_broadcast = true\n"]))
        netns = draw(st.sampled_from(["", f'netns = ["dl-{name}"]\n', f'netns = ["dl-{name}", "dl-x{k}"]\n']))
        out.append(f'[[namespace]]\nname = "{name}"\nkind = "l2"\nparent = "{parent}"\n'
                   f'addresses = [{addresses}]\n{quota}{advertise}{directed}{netns}')
        l2s.append((name, k + 1, six))
    hosts = {}
    for name in L3S:
        if not l2s or not draw(st.booleans()):
            continue
        parent, k, six = draw(st.sampled_from(l2s))
        free = [h for h in range(10, 16) if h not in hosts.setdefault(parent, set())]
        picked = draw(st.lists(st.sampled_from(free), max_size=2, unique=True)) if free else []
        hosts[parent].update(picked)
        addresses = [f"10.{k}.0.{h}/24" if not six or h % 2 else f"fd00:{k}::{h}/64" for h in picked]
        groups = ", ".join(f'"{g}"' for g in draw(st.lists(st.sampled_from(GROUPS), unique=True)))
        out.append(f'[[namespace]]\nname = "{name}"\nkind = "l3"\nparent = "{parent}"\n'
                   f'addresses = [{", ".join(f"{a!r}" for a in addresses)}]\ngroups = [{groups}]\n'
                   .replace("'", '"'))
        if draw(st.booleans()):
            mtu = draw(st.sampled_from([1500, 9000]))
            kernel = draw(st.sampled_from([
                "", f'netns = "rl-{name}"\naddress = "10.{k}.0.{20 + len(hosts)}/24"\n',
                f'netns = "rl-{name}"\naddress = ["10.{k}.0.{20 + len(hosts)}/24", '
                f'"fd00:{k}::{20 + len(hosts)}/64"]\ngateway = ["10.{k}.0.1", "fd00:{k}::1"]\n']))
            dhcp = draw(st.sampled_from(["", "dhcp_server = true\n"]))
            out.append(f'[[port]]\nname = "p{name}"\nnamespace = "{name}"\nmtu = {mtu}\n{kernel}{dhcp}')
    for name, k, six in l2s:
        if draw(st.booleans()):
            router = draw(st.sampled_from(["", "router = true\n"]))
            kind = draw(st.sampled_from(["", 'kind = "veth"\n', 'kind = "xdp"\n']))
            out.append(f'[[port]]\nname = "up{name}"\nnamespace = "{name}"\n{router}{kind}')
            for r in draw(st.lists(st.sampled_from([1, 2, 6] if six else [1, 2]), unique=True)):
                if r == 6:
                    via = draw(st.sampled_from(["", f'via = "fd00:{k}::fe"\n']))
                    prefix = draw(st.sampled_from(["fd96::/48", "default"])) if via else "fd96::/48"
                else:
                    via = draw(st.sampled_from(["", f'via = "10.{k}.0.254"\n']))
                    prefix = f"10.9{r}.0.0/16"
                out.append(f'[[route]]\nnamespace = "{name}"\nprefix = "{prefix}"\n'
                           f'port = "up{name}"\n{via}')
    return "\n".join(out) or '[root]\naddresses = ["10.0.0.1/24"]\n'


def reloaded(old_text, new_text, learned=frozenset()):
    running = check(load_config(old_text))
    config = load_config(new_text)
    desired = check(config).snapshot()
    steps = reload_steps(running.snapshot(), desired, config, learned)
    with running.transaction():
        for step in steps:
            step.apply(running)
    return running, steps, desired, config


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(topologies(), topologies())
def test_any_topology_reloads_into_any_other(old_text, new_text):
    assume(validate(old_text).ok and validate(new_text).ok)
    running, steps, desired, config = reloaded(old_text, new_text)
    assert same_state(running.snapshot(), desired, config), [s.text for s in steps]
    # and again: nothing left to do
    assert reload_steps(running.snapshot(), desired, config) == []


@settings(max_examples=100, deadline=None)
@given(topologies())
def test_the_same_file_is_no_change(text):
    assume(validate(text).ok)
    running = check(load_config(text))
    assert reload_steps(running.snapshot(), running.snapshot(), load_config(text)) == []


BASE = (config_text.namespace("tenants", "l2", "10.1.0.1/24")
        + config_text.namespace("web", "l3", "10.1.0.10/24", parent="tenants")
        + config_text.namespace("db", "l3", "10.1.0.20/24", parent="tenants")
        + config_text.table("[[port]]", name="tsw-web", namespace="web")
        + config_text.table("[[port]]", name="tsw-db", namespace="db"))


def test_a_port_whose_kind_changes_is_replaced_the_rest_untouched():
    new = BASE.replace('name = "tsw-db"\nnamespace = "db"\n',
                       'name = "tsw-db"\nnamespace = "db"\nkind = "veth"\ndhcp_lease_time = 600\n')
    running, steps, _, _ = reloaded(BASE, new)
    assert [s.text for s in steps] == ["port tsw-db goes (changed: it comes back)",
                                       "port tsw-db comes (in db)"]
    assert running.port("tsw-db").options == {"kind": "veth", "dhcp_lease_time": 600}
    assert running.port("tsw-web").id == 0            # web's port: untouched


def test_the_generated_topologies_are_mostly_valid_and_varied():
    from hypothesis import find
    # the property above would prove little on files the validator refuses
    big = find(topologies(), lambda t: validate(t).ok and t.count("[[namespace]]") >= 5
               and "[[route]]" in t and "groups = [\"" in t and "quota" in t
               and "fd96::/48" in t and "advertise = true" in t and '"fd00:' in t
               and "directed_broadcast" in t and 'netns = ["dl-' in t and "dhcp_server" in t)
    assert validate(big).ok


def test_adding_and_removing_a_tenant_touches_nothing_else():
    new = BASE.replace('[[namespace]]\nname = "db"', '[[namespace]]\nname = "cache"\nkind = "l3"\n'
                       'parent = "tenants"\naddresses = ["10.1.0.30/24"]\n\n[[namespace]]\nname = "db"')
    new = new.replace('[[port]]\nname = "tsw-db"\nnamespace = "db"\n', "")
    new = new.replace('name = "db"\nkind = "l3"\nparent = "tenants"\naddresses = ["10.1.0.20/24"]\n', "")
    new = new.replace('[[namespace]]\n\n', "")
    new += '\n[[port]]\nname = "tsw-cache"\nnamespace = "cache"\n'
    running, steps, desired, config = reloaded(BASE, new)
    assert [s.text for s in steps] == [
        "port tsw-db goes", "namespace db goes", "10.1.0.20/24 of tenants goes",
        "namespace cache comes (l3 in tenants)", "10.1.0.30/24 comes to cache",
        "port tsw-cache comes (in cache)"]
    assert running.port("tsw-web").id == 0            # web and its port: untouched


def test_an_address_moving_between_tenants_is_pulled_then_pushed():
    new = BASE.replace('"10.1.0.20/24"', '"10.1.0.20/24", "10.1.0.10/24"').replace(
        'addresses = ["10.1.0.10/24"]', "addresses = []")
    _, steps, _, _ = reloaded(BASE, new)
    assert [s.text for s in steps] == ["10.1.0.10/24 pulled from web", "10.1.0.10/24 pushed into db"]


def test_a_learned_membership_is_the_snoopers():
    running = check(load_config(BASE))
    running.join("239.5.5.5", "web")                 # as if learned from a report
    config = load_config(BASE)
    learned = {("web", "239.5.5.5")}
    assert reload_steps(running.snapshot(), check(config).snapshot(), config, learned) == []
    pinned = BASE.replace('addresses = ["10.1.0.10/24"]', 'addresses = ["10.1.0.10/24"]\n'
                          'groups = ["239.5.5.5"]')
    config = load_config(pinned)
    steps = reload_steps(running.snapshot(), check(config).snapshot(), config, learned)
    assert [s.text for s in steps] == ["web's learned 239.5.5.5 is configured", "web joins 239.5.5.5"]


def test_a_changed_kind_or_parent_replaces_the_namespace_and_what_is_below():
    new = BASE.replace('name = "tenants"\nkind = "l2"', 'name = "tenants"\nkind = "l2"\nparent = "init"')
    assert reloaded(BASE, new)[1] == []                # the default parent: no change
    moved = BASE + '\n[[namespace]]\nname = "other"\nkind = "l2"\n'
    moved2 = moved.replace('name = "web"\nkind = "l3"\nparent = "tenants"\naddresses = ["10.1.0.10/24"]',
                           'name = "web"\nkind = "l3"\nparent = "other"')
    running, steps, desired, config = reloaded(moved, moved2)
    texts = [s.text for s in steps]
    assert "namespace web goes (changed: it comes back)" in texts
    assert "port tsw-web goes (changed: it comes back)" in texts
    assert running.namespace("web").parent == running.namespace("other").id


BASE6 = (config_text.namespace("tenants", "l2", "10.1.0.1/24", "fd00:1::1/64")
         + config_text.namespace("web", "l3", "10.1.0.10/24", "fd00:1::10/64", parent="tenants")
         + config_text.namespace("db", "l3", "fd00:1::20/64", parent="tenants")
         + config_text.table("[[port]]", name="tsw-web", namespace="web")
         + config_text.table("[[port]]", name="tsw-up", namespace="tenants")
         + config_text.table("[[route]]", namespace="tenants", prefix="default", via="fd00:1::fe",
                             port="tsw-up"))


def test_ipv6_addresses_routes_and_options_reload_without_touching_the_rest():
    new = (BASE6.replace('"fd00:1::10/64"', '"fd00:1::11/64"')
           .replace('via = "fd00:1::fe"', 'via = "fd00:1::fd"')
           .replace('kind = "l2"\n', 'kind = "l2"\nadvertise = true\n', 1))
    running, steps, desired, config = reloaded(BASE6, new)
    assert [s.text for s in steps] == [
        "route ::/0 in tenants goes", "fd00:1::10/64 pulled from web",
        "fd00:1::10/64 of tenants goes", "options of tenants: advertise=true",
        "fd00:1::11/64 comes to web", "route ::/0 in tenants comes"]
    assert same_state(running.snapshot(), desired, config)
    assert running.port("tsw-web").id == 0 and running.namespace_options("tenants") == {
        "advertise": True}
    back, steps, _, _ = reloaded(new, BASE6)         # advertise left out: the default again
    assert "options of tenants: advertise=false" in [s.text for s in steps]
    assert back.namespace_options("tenants") == {"advertise": False}


def test_a_port_whose_kernel_side_gains_ipv6_comes_back_with_both_families():
    old = BASE6 + config_text.table("[[port]]", name="tsw-db", namespace="db", netns="rl-db",
                                    mtu=1500, address="10.1.0.20/24")
    new = old.replace('address = "10.1.0.20/24"', 'address = ["10.1.0.20/24", "fd00:1::20/64"]\n'
                      'gateway = ["10.1.0.1", "fd00:1::1"]')
    running, steps, _, _ = reloaded(old, new)
    assert [s.text for s in steps] == ["port tsw-db goes (changed: it comes back)",
                                       "port tsw-db comes (in db)"]
    assert running.port("tsw-db").options["gateway"] == ["10.1.0.1", "fd00:1::1"]


def test_isolation_keys_reload_without_touching_the_rest():
    """directed_broadcast and delegated kernel namespaces of an L2 change in place (a
    delegation taken back is revoked); a port's dhcp_server mark brings the port back."""
    old = BASE.replace('kind = "l2"\n', 'kind = "l2"\nnetns = ["dl-a", "dl-b"]\n', 1)
    new = (BASE.replace('kind = "l2"\n', 'kind = "l2"\nnetns = ["dl-b", "dl-c"]\n'
                        'directed_broadcast = true\n', 1)
           .replace('name = "tsw-db"\nnamespace = "db"\n', 'name = "tsw-db"\nnamespace = "db"\n'
                    'dhcp_server = true\n'))
    running, steps, desired, config = reloaded(old, new)
    assert [s.text for s in steps] == [
        "port tsw-db goes (changed: it comes back)", "tenants gives back kernel namespace dl-a",
        "options of tenants: directed_broadcast=true", "kernel namespace dl-c delegated to tenants",
        "port tsw-db comes (in db)"]
    assert same_state(running.snapshot(), desired, config)
    assert running.netns_delegated("tenants") == ["dl-b", "dl-c"]
    assert running.port("tsw-web").id == 0 and running.port("tsw-db").options["dhcp_server"]
    back, steps, _, _ = reloaded(new, old)
    assert back.netns_delegated("tenants") == ["dl-a", "dl-b"]
    assert back.namespace_options("tenants")["directed_broadcast"] is False
