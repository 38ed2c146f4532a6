"""The learning-paradigm zoo: one module per paradigm, each the real algorithm under its real name.

Part 1: ``recurrent`` (sequence tasks, loss, evaluation), ``bptt``, ``eprop``, ``meta``.
Part 2: ``reward``, ``homeostasis``, ``stp``, ``structural``, ``ewc``, ``federated``, ``evolution``.
The networks they train live in :mod:`snnlab.models` (``recurrent``, ``mlp``) and every neuron update
in :mod:`snnlab.neurons`; notebook 06's delayed-reward task is in :mod:`snnlab.experiments.reward`.
Import the submodule you need.
"""
