"""The notebooks' experiments: worked examples, trainers and figures, one module per rule or model module.

``florian`` (notebook 01: the worked example, the reward-learning network, their figures; rules in
:mod:`snnlab.plasticity.florian`), ``mozafari`` (notebook 02: the layer-wise trainer with checkpoints
and the figures; network and kernels in :mod:`snnlab.models.mozafari`), ``reward`` (notebook 06: the
delayed-reward task and its figures; the rule in :mod:`snnlab.learning.reward`). Each module here is
named after the module whose mathematics it exercises. Import the submodule you need.
"""
