"""A datapath that refuses the n-th table write: the compiler tests' fault injector; the
ids of a switch's namespaces and ports by name."""
from pyctl.compile.compiler import Compiler
from pyctl.compile.plan_builder import compile_plan


class FailingDatapath:
    """Forwards to a real datapath and raises on the n-th table write."""

    WRITES = {"set_namespace", "remove_namespace", "set_port", "remove_port", "add_address",
              "remove_address", "set_broadcast", "remove_broadcast", "add_route", "remove_route",
              "set_group", "remove_group", "set_directed_broadcast"}

    def __init__(self, dp, fail_at):
        self.dp, self.fail_at, self.writes = dp, fail_at, 0
        self.calls = []

    def __getattr__(self, name):
        attr = getattr(self.dp, name)
        if name not in self.WRITES:
            return attr

        def write(*args, **kwargs):
            self.writes += 1
            if self.writes == self.fail_at:
                raise MemoryError("group table full (injected)")
            self.calls.append((name, args + tuple(kwargs.values())))
            return attr(*args, **kwargs)
        return write


def compiler_over(sw, dp, fail_at=0):
    """A compiler for ``sw`` whose datapath ``dp`` already runs its plan, writing through
    ``FailingDatapath(dp, fail_at)`` (0: never refuses; ``calls`` records the writes).
    Its next sync diffs two whole plans (it was handed the plan, not told the changes)."""
    Compiler(sw, dp).sync()
    failing = FailingDatapath(dp, fail_at)
    comp = Compiler(sw, failing)
    comp.plan = compile_plan(sw, comp.families)
    comp.synced_version = sw.version
    return comp, failing


def ids(sw):
    """({namespace name: id}, {port name: id}) of ``sw``."""
    return {ns.name: ns.id for ns in sw.namespaces()}, {p.name: p.id for p in sw.ports()}
