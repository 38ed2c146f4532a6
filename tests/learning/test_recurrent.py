"""Tests for snnlab.learning.recurrent: the loss, the readout decision and the sequence tasks."""
import pytest
import torch

import snnlab  # noqa: F401  (quiets the Triton logger)
from snnlab.data import Split
from snnlab.learning import recurrent as R


def test_sequence_loss_and_output_error_match_reference_and_autograd():
    g = torch.Generator().manual_seed(1)
    y = torch.randn(5, 3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    target = torch.tensor([0, 3, 1])
    mask = torch.tensor([0.0, 0.0, 1.0, 0.5, 1.0])
    loss = R.sequence_loss(y, target, mask)
    ref = 0.0
    for t in range(5):
        for b in range(3):
            ref += mask[t].item() * -torch.log_softmax(y[t, b], -1)[target[b]].item()
    assert loss.item() == pytest.approx(ref / (2.5 * 3))
    (grad,) = torch.autograd.grad(loss, y)
    for t in range(5):
        torch.testing.assert_close(grad[t], R.output_error(y[t].detach(), target, float(mask[t]), 7.5))


def test_predict_sums_masked_readout():
    y = torch.zeros(3, 1, 2)
    y[0, 0, 0] = 10.0          # unmasked step must not count
    y[2, 0, 1] = 1.0
    assert R.predict(y, torch.tensor([0.0, 1.0, 1.0])).item() == 1


def test_digits_sequence_task_presents_rows_in_order():
    images = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    split = Split(images, torch.arange(4))
    task = R.digits_sequence_task(split, steps_per_row=2, readout_steps=3)
    assert task.x.shape == (16, 4, 8)
    for t in range(16):
        torch.testing.assert_close(task.x[t], images[:, 0, t // 2])
    assert task.mask.tolist() == [0.0] * 13 + [1.0] * 3
    spikes = R.digits_sequence_task(split, encoding="spikes", generator=torch.Generator().manual_seed(0))
    assert set(spikes.x.unique().tolist()) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="encoding"):
        R.digits_sequence_task(split, encoding="latency")


def test_delayed_recall_task_layout():
    task = R.delayed_recall_task(6, n_classes=3, cue_steps=2, delay_steps=4, recall_steps=3,
                                 channels_per_class=2, rate=1.0, noise_rate=0.0,
                                 generator=torch.Generator().manual_seed(0))
    assert task.x.shape == (9, 6, 8)
    for n in range(6):
        c = int(task.y[n])
        expected_cue = torch.zeros(8)
        expected_cue[2 * c:2 * c + 2] = 1.0
        assert torch.equal(task.x[0, n], expected_cue) and torch.equal(task.x[1, n], expected_cue)
        assert task.x[2:6, n].sum() == 0                       # silent delay
        assert torch.equal(task.x[6:, n, 6:], torch.ones(3, 2))  # recall channels
    assert task.mask.tolist() == [0.0] * 6 + [1.0] * 3
    with pytest.raises(ValueError, match="n_classes"):
        R.delayed_recall_task(4, n_classes=1)


def test_tasks_on_cpu_device_equal_the_default_and_move_with_to(assert_same):
    split = Split(torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(0)), torch.arange(6) % 3)
    for kw in ({}, {"encoding": "spikes", "generator": torch.Generator().manual_seed(1)}):
        a = R.digits_sequence_task(split, **kw)
        kw = {k: (torch.Generator().manual_seed(1) if k == "generator" else v) for k, v in kw.items()}
        b = R.digits_sequence_task(split, device="cpu", **kw)
        assert_same((b.x, b.y, b.mask), (a.x, a.y, a.mask))
    a = R.delayed_recall_task(8, delay_steps=3, generator=torch.Generator().manual_seed(2))
    b = R.delayed_recall_task(8, delay_steps=3, generator=torch.Generator().manual_seed(2), device="cpu")
    assert_same((b.x, b.y, b.mask), (a.x, a.y, a.mask))
    assert a.to("cpu") is a and a.to(torch.device("cpu")) is a  # already there: no copy
