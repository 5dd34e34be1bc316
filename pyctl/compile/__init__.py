"""The compiler: the model turned into the fast path's tables.

``plan_builder`` holds the compile rules (model state -> ``Plan`` entries, kept
incrementally); ``compiler`` applies the difference between the plan the datapath
runs and the model's, inside ``datapath.update()``.  See docs/architecture.md.
"""
