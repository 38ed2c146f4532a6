"""Notebook 04 digits runs over seeds: test accuracy and validation curve of BPTT, e-prop symmetric and
e-prop random (the notebook's network, 10 epochs, lr 0.01), one line per seed (test accuracy, validation
accuracy per epoch, seconds). Output of seeds 0 1 2 in results/04_digits_seeds.txt.

    python scripts/eprop_vs_bptt_seeds.py 0 1 2 > results/04_digits_seeds.txt
"""
import torch, sys, time
from snnlab import utils, data
from snnlab.learning import bptt, eprop, recurrent as rnn
from snnlab.models.recurrent import RecurrentSNN, RSNNParams
utils.limit_threads(1).apply()
for seed in [int(s) for s in sys.argv[1:]]:
    splits = data.load_digits_split(seed)
    tr = rnn.digits_sequence_task(splits.train, steps_per_row=2); va = rnn.digits_sequence_task(splits.val, steps_per_row=2); te = rnn.digits_sequence_task(splits.test, steps_per_row=2)
    p = RSNNParams(n_in=8, n_hidden=64, n_out=10, neuron="lif")
    out = {}
    for m in ("bptt", "symmetric", "random"):
        t0=time.time()
        net = RecurrentSNN(p, generator=torch.Generator().manual_seed(seed), in_gain=2.0)
        g = torch.Generator().manual_seed(seed + 1)
        if m == "bptt":
            h = bptt.train(net, tr, va, epochs=10, lr=0.01, generator=g, progress=False)
        else:
            h = eprop.train(net, tr, va, feedback=m, epochs=10, lr=0.01, generator=g, progress=False)
        out[m] = (round(rnn.evaluate(net, te)["accuracy"],3), [round(a,2) for a in h["val_accuracy"]], round(time.time()-t0))
    print(seed, out, flush=True)
