"""The learning-paradigm zoo: one module per paradigm, each the real algorithm under its real name.

Part 1: ``recurrent`` (LIF/ALIF networks and tasks), ``bptt``, ``eprop``, ``meta``.
Part 2: ``reward``, ``homeostasis``, ``stp``, ``structural``, ``ewc``, ``federated``, ``evolution``.
Import the submodule you need.
"""
