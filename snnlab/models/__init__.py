"""Networks: ``mozafari`` (the deep convolutional SNN of Mozafari et al. 2019) and
``spikingresformer`` (SpikingResformer, CVPR 2024). Import the submodule you need."""
