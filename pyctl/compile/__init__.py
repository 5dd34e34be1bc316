"""The compiler: the model turned into the fast path's tables.

``plan`` is the ``Plan`` (the tables as plain data); ``event_marks`` maps each
model event type to the plan entries it may touch; ``plan_builder`` holds the
compile rules (one set: the full build is the incremental update applied to
everything), over the model's read API; ``plan_index`` keeps the plan's indexes
(what depends on what, and the slow path's questions); ``plan_diff`` writes a
change of the plan into the datapath in a safe order, undone on refusal;
``compiler`` ties them to a ``Switch`` and a ``Datapath``.  See docs/architecture.md.
"""
