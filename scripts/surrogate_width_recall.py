"""Delayed recall (notebook 04 defaults, seed 0) trained by full BPTT with four ATan surrogate slopes:
validation accuracy per epoch and the first training losses, one line per slope. Output in
results/04_surrogate_width_recall.txt (quoted in the notebook's Section 2 instructor notes).

    python scripts/surrogate_width_recall.py > results/04_surrogate_width_recall.txt
"""
import time, torch, sys
from snnlab import utils
from snnlab.learning import bptt, recurrent as rnn
from snnlab.models.recurrent import RecurrentSNN, RSNNParams
utils.limit_threads(1).apply()
seed=0
tr = rnn.delayed_recall_task(256, delay_steps=20, generator=torch.Generator().manual_seed(seed))
va = rnn.delayed_recall_task(256, delay_steps=20, generator=torch.Generator().manual_seed(seed+1))
for a in (0.5, 2.0, 8.0, 32.0):
    p = RSNNParams(n_in=tr.n_in, n_hidden=32, n_out=2, neuron="alif", tau_out_ms=0.0, surrogate_alpha=a)
    net=RecurrentSNN(p, generator=torch.Generator().manual_seed(seed), in_gain=2.0)
    t0=time.time()
    h=bptt.train(net,tr,va,method='bptt',epochs=12,lr=0.01,generator=torch.Generator().manual_seed(seed+1),progress=False)
    print(a, [round(x,2) for x in h['val_accuracy']], [round(x,3) for x in h['train_loss']][:4], f"{time.time()-t0:.1f}s", flush=True)
