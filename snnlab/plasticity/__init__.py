"""Local plasticity rules as pure tensor functions with thin stateful wrappers.

``traces`` (spike traces), ``florian`` (STDP / MSTDP / MSTDPET, Florian 2007), ``mozafari``
(STDP / R-STDP with k-WTA, Mozafari et al. 2019), ``dassdp`` (DA-SSDP). Import the submodule you need.
"""
