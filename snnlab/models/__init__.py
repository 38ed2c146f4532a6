"""Networks, one module each; import the submodule you need.

``mozafari`` (the deep convolutional SNN of Mozafari et al. 2019), ``spikingresformer``
(SpikingResformer, CVPR 2024), ``recurrent`` (the recurrent LIF/ALIF network that BPTT, truncated
BPTT and e-prop train) and ``mlp`` (the small spiking classifier of EWC, federated averaging and
neuroevolution). Their neurons come from :mod:`snnlab.neurons`; the rules that train them live in
:mod:`snnlab.plasticity` and :mod:`snnlab.learning`; the notebooks' trainers and figures in
:mod:`snnlab.experiments`.
"""
