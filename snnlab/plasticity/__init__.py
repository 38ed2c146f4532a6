"""Local plasticity rules as pure tensor functions with thin stateful wrappers.

``traces`` (spike traces), ``florian`` (STDP / MSTDP / MSTDPET, Florian 2007), ``mozafari``
(STDP / R-STDP with k-WTA, Mozafari et al. 2019), ``dassdp`` (DA-SSDP), ``sites`` (the weight and
taps a rule attaches to, as a model names them). Rules never import a model; the experiments that
exercise them live in :mod:`snnlab.experiments`. Import the submodule you need.
"""
