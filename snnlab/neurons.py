"""The neuron's home: every spiking-neuron update in snnlab is a pure step function of this module.

Why one module, and this one: DESIGN.md's data flow has one neuron layer (``data -> encoding ->
neurons/models -> plasticity/learning``), and ``snnlab.neurons`` is its name. The learning modules
(``snnlab.learning.*``) and the small models (``snnlab.models.recurrent``, ``snnlab.models.mlp``)
call these functions instead of writing ``v = alpha v + I`` themselves; notebook 00's neuron (what
used to be ``snnlab.lif``) lives here too, so "the LIF neuron" has one place to look. Four parts:

1. **Surrogate spike functions** (:class:`ATan`, :func:`atan_spike`, :func:`make_surrogate`,
   :func:`surrogate_derivative`): Heaviside forward, smooth derivative backward (Neftci, Mostafa &
   Zenke 2019, doi:10.1109/MSP.2019.2931595). The ATan surrogate *is* spikingjelly's
   (``surrogate.atan``: same forward, same ``atan_backward``, so the same bits); the one thing added
   is ``generate_vmap_rule = True``, without which ``torch.func.vmap`` refuses the Function (EWC's
   per-sample Fisher needs vmap). One surrogate therefore serves BPTT, e-prop, MAML and EWC.
2. **Leaky integrate-and-fire** (:func:`lif_step`, :func:`alif_step`,
   :func:`leaky_integrator_step`, :class:`LIFParams`): charge -> fire -> reset with the leak
   integrated exactly over a step of ``dt`` ms, alpha = exp(-dt/tau_mem)::

       h_t = alpha v_{t-1} + I_t                           (charge; h is the pre-reset potential)
       z_t = H(h_t - A_t)                                  (fire; A_t = v_th, or v_th + beta a_t for ALIF)
       v_t = h_t - v_th z_t      ("subtract", soft reset)  or   v_t = h_t (1 - z_t)   ("zero", hard reset)

   Used by ``snnlab.models.recurrent`` (LIF/ALIF, Bellec et al. 2020), ``snnlab.models.mlp``,
   ``snnlab.learning.meta`` and the demos of ``learning.homeostasis``, ``reward`` and ``structural``.
   Not spikingjelly's ``LIFNode``: that is a stateful module with the Euler leak 1 - 1/tau and no
   moving threshold; the rules need a pure function with the exact leak, the pre-reset ``h`` (e-prop
   reads it), an ALIF threshold, and tensors that may carry population dimensions or run under vmap.
   With alpha = 1 - 1/tau the two agree (``tests/test_neurons.py`` checks both resets).
   Reference: Gerstner, Kistler, Naud & Paninski, *Neuronal Dynamics* (2014), ch. 1.3 and 6.
3. **Notebook 00's neuron** (:func:`simulate_lif`, :func:`first_spike_step`, ...): spikingjelly's own
   ``LIFNode`` (``decay_input=True``) driven by a current, with its closed-form first-spike time.
4. **The one-shot IF neuron** of Mozafari et al. 2019 (:func:`one_shot_if_step`, :func:`one_shot_if`):
   no leak, no reset, at most one spike per image; used by ``snnlab.models.mozafari``.

Time is in ms, ``dt`` explicit; potentials are dimensionless (the input current is in the same units).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from spikingjelly.activation_based import surrogate

from .utils import check_choice, check_float, check_int, check_positive

SURROGATES = ("atan", "sigmoid")
RESETS = ("zero", "subtract")


# =========================================================================== 1. surrogate spike functions
class _ATanFunction(surrogate.atan):
    """spikingjelly's ATan ``autograd.Function`` (forward ``heaviside``, backward ``atan_backward``),
    with a vmap rule: spikingjelly 2.0.0 defines ``setup_context`` but not ``generate_vmap_rule``, so
    ``torch.func.vmap`` raises "does not have vmap support" on the original."""

    generate_vmap_rule = True


class ATan(surrogate.ATan):
    """spikingjelly's ``surrogate.ATan`` module, vmap-able: forward H(x) = 1[x >= 0], backward

    .. math:: g'(x) = \\frac{\\alpha/2}{1 + (\\frac{\\pi}{2} \\alpha x)^2}

    (primitive g(x) = arctan(pi/2 alpha x)/pi + 1/2). Same numbers as spikingjelly's, bit for bit.
    """

    @staticmethod
    def spiking_function(x, alpha):
        return _ATanFunction.apply(x, alpha)


def atan_spike(x: torch.Tensor, alpha: float = 2.0) -> torch.Tensor:
    """The ATan spike function as a plain function: H(x) forward, :class:`ATan`'s g'(x) backward.

    Works under ``torch.func.vmap``/``grad``/``jacrev`` and with ``create_graph`` (MAML).
    Args: x: the distance to threshold (any shape); alpha: the surrogate's sharpness.
    """
    return _ATanFunction.apply(x, alpha)


def atan_prime(u: float, alpha: float = 2.0) -> float:
    """The ATan surrogate's derivative as a plain float, g'(u) = (alpha/2) / (1 + (pi/2 alpha u)^2);
    for hand calculations (notebook 04's exercise)."""
    return (alpha / 2) / (1 + (math.pi / 2 * alpha * u) ** 2)


def make_surrogate(name: str = "atan", alpha: float = 2.0):
    """A surrogate spike function module: ``"atan"`` (:class:`ATan`) or ``"sigmoid"``
    (spikingjelly's ``surrogate.Sigmoid``, g'(x) = alpha s(1 - s), s = sigmoid(alpha x); not vmap-able,
    nothing here vmaps it)."""
    check_choice("surrogate", name, SURROGATES)
    check_float("surrogate_alpha", alpha, minimum=0.0, strict_minimum=True)
    return ATan(alpha=alpha) if name == "atan" else surrogate.Sigmoid(alpha=alpha)


def surrogate_derivative(spike_fn, x: torch.Tensor) -> torch.Tensor:
    """The surrogate derivative g'(x) that ``spike_fn`` uses in its backward pass, as a tensor.

    Obtained from the surrogate's own backward (autograd on a detached copy), so e-prop's
    pseudo-derivative psi is by construction the function BPTT differentiates through.
    """
    with torch.enable_grad():
        x_ = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(spike_fn(x_).sum(), x_)
    return grad


# =========================================================================== 2. leaky integrate-and-fire
@dataclass(frozen=True)
class LIFParams:
    """Parameters of a LIF population driven step by step (the demos of notebooks 06 and 07).

    Attributes:
        tau_mem_ms: membrane time constant tau_mem, ms, > 0.
        v_threshold: firing threshold v_th (input units), > 0.
        reset: ``"zero"`` (hard reset to 0, the default here) or ``"subtract"`` (v_th is subtracted).
    """

    tau_mem_ms: float = 20.0
    v_threshold: float = 1.0
    reset: str = "zero"

    def __post_init__(self):
        check_float("tau_mem_ms", self.tau_mem_ms, minimum=0.0, strict_minimum=True)
        check_float("v_threshold", self.v_threshold, minimum=0.0, strict_minimum=True)
        check_choice("reset", self.reset, RESETS)

    def decay(self, dt: float) -> float:
        """alpha = exp(-dt / tau_mem), the exact leak over one step of ``dt`` ms."""
        return lif_decay(self.tau_mem_ms, dt)


def lif_decay(tau_mem_ms: float, dt_ms: float) -> float:
    """alpha = exp(-dt / tau), the factor by which a leaky potential decays in one step."""
    return math.exp(-dt_ms / tau_mem_ms)


class LIFStep(NamedTuple):
    """What :func:`lif_step` returns: spikes ``z`` (0/1), pre-reset ``h`` and post-reset ``v``."""

    z: torch.Tensor
    h: torch.Tensor
    v: torch.Tensor


def lif_step(current: torch.Tensor, v: torch.Tensor, *, alpha: float, v_threshold: float, reset: str,
             threshold: torch.Tensor | None = None, spike_fn=None, detach_reset: bool = True,
             scale_by_threshold: bool = True) -> LIFStep:
    """One charge -> fire -> reset step of a leaky integrate-and-fire population.

    .. math:: h_t = \\alpha v_{t-1} + I_t, \\qquad z_t = H(h_t - A_t), \\qquad
              v_t = h_t - v_{th} z_t \\;(\\text{subtract}) \\;\\text{ or }\\; v_t = h_t (1 - z_t) \\;(\\text{zero})

    Without ``spike_fn`` the spike is a plain comparison ``h_t >= A_t`` (no gradient: the rule-based
    demos). With a surrogate ``spike_fn`` the spike is ``spike_fn(x)``, x = (h_t - A_t)/v_th when
    ``scale_by_threshold`` (Bellec et al. 2020's normalised distance, as in ``models.recurrent``) or
    x = h_t - A_t (spikingjelly's neurons, as in ``models.mlp``); the forward value is H either way.

    Args:
        current: input I_t this step, any shape (broadcasts with ``v``).
        v: post-reset potential v_{t-1} of the previous step.
        alpha: leak factor per step, exp(-dt/tau_mem) (:func:`lif_decay`).
        v_threshold: v_th; also what a soft reset subtracts.
        reset: ``"subtract"`` or ``"zero"`` (a keyword without default: every caller says which).
        threshold: the threshold A_t when it moves (ALIF, :func:`alif_step`); None: A_t = v_th.
        spike_fn: a surrogate spike function (:func:`make_surrogate`, :func:`atan_spike`) or None.
        detach_reset: stop the gradient through the reset term (spikingjelly's ``detach_reset``).
        scale_by_threshold: feed (h - A)/v_th (True) or h - A (False) to ``spike_fn``.
    Returns:
        :class:`LIFStep` ``(z, h, v)``, each shaped like ``current + v``.
    """
    if reset not in RESETS:
        check_choice("reset", reset, RESETS)
    h = alpha * v + current
    thr = v_threshold if threshold is None else threshold
    if spike_fn is None:
        z = (h >= thr).to(h.dtype)
    else:
        x = h - thr
        z = spike_fn(x / v_threshold if scale_by_threshold else x)
    z_reset = z.detach() if detach_reset and spike_fn is not None else z   # a Heaviside z has no graph anyway
    v = h - v_threshold * z_reset if reset == "subtract" else h * (1.0 - z_reset)
    return LIFStep(z, h, v)


class ALIFStep(NamedTuple):
    """What :func:`alif_step` returns: spikes ``z``, pre-reset ``h``, threshold A, post-reset ``v``,
    adaptation ``a``."""

    z: torch.Tensor
    h: torch.Tensor
    threshold: torch.Tensor
    v: torch.Tensor
    a: torch.Tensor


def alif_step(current: torch.Tensor, v: torch.Tensor, a: torch.Tensor, z_prev: torch.Tensor, *, alpha: float,
              rho: float, beta: float, v_threshold: float, spike_fn=None, detach_reset: bool = True) -> ALIFStep:
    """One step of the adaptive-threshold LIF neuron (ALIF; Bellec et al. 2020, Methods, Nat. Commun.
    11:3625, doi:10.1038/s41467-020-17236-y), soft reset::

        a_t = rho a_{t-1} + z_{t-1};   A_t = v_th + beta a_t;   then :func:`lif_step` with threshold A_t

    ``beta = 0`` is the plain LIF neuron (A_t = v_th). rho = exp(-dt/tau_adapt). The threshold always
    sees the neuron's own previous spike ``z_prev`` (its gradient is not stopped here).
    Returns :class:`ALIFStep`.
    """
    a = rho * a + z_prev
    threshold = v_threshold + beta * a
    z, h, v = lif_step(current, v, alpha=alpha, v_threshold=v_threshold, reset="subtract", threshold=threshold,
                       spike_fn=spike_fn, detach_reset=detach_reset)
    return ALIFStep(z, h, threshold, v, a)


def leaky_integrator_step(current: torch.Tensor, u: torch.Tensor, *, alpha: float) -> torch.Tensor:
    """A non-spiking leaky readout neuron: u_t = alpha u_{t-1} + I_t (no threshold, no reset)."""
    return alpha * u + current


# =========================================================================== 3. notebook 00's neuron
# spikingjelly's ``LIFNode`` (``decay_input=True``, hard reset) integrates, per step of ``dt`` ms,
#
#     H[t] = V[t-1] + (X[t] - (V[t-1] - V_reset)) / tau,     tau = tau_ms / dt_ms   (steps)
#     S[t] = Theta(H[t] - V_th),      V[t] = H[t] (1 - S[t]) + V_reset S[t]
#
# For a constant input X = I > V_th and V_reset = 0 starting from rest, H[t] = I (1 - (1 - 1/tau)^t),
# so the neuron first fires at step (1-based) t* = ceil( ln(1 - V_th / I) / ln(1 - 1/tau) ) and, after
# each reset, every t* steps. The interval is a whole number of steps, so the rate 1000 / (t* dt) Hz
# takes only the values 1000/dt, 1000/(2 dt), 1000/(3 dt), ... (a staircase) and can never exceed
# one spike per step, 1000/dt Hz, reached at I >= tau V_th. An absolute refractory period of r steps
# (input clamped to 0, so V stays at the reset) lengthens every interval to t* + r steps.
# Reference: Gerstner et al., Neuronal Dynamics (2014), ch. 1.3; spikingjelly
# ``activation_based.neuron.LIFNode``. Used by ``00_welcome.ipynb``.
class LIFRun(NamedTuple):
    """``v`` membrane potential after reset [T, N]; ``h`` before reset [T, N]; ``spikes`` [T, N] (0/1)."""

    v: torch.Tensor
    h: torch.Tensor
    spikes: torch.Tensor


def _tau_steps(tau_ms: float, dt_ms: float) -> float:
    tau_ms = check_positive("tau_ms", tau_ms)
    dt_ms = check_positive("dt_ms", dt_ms)
    if tau_ms / dt_ms <= 1.0:
        raise ValueError(f"tau_ms must exceed dt_ms (spikingjelly needs tau/dt > 1), got tau_ms={tau_ms}, dt_ms={dt_ms}")
    return tau_ms / dt_ms


def simulate_lif(current: torch.Tensor, *, tau_ms: float = 20.0, v_threshold: float = 1.0,
                 v_reset: float = 0.0, dt_ms: float = 1.0) -> LIFRun:
    """Drive spikingjelly LIF neurons with ``current`` [T] or [T, N] (dimensionless, in units of V).

    Returns an :class:`LIFRun` on the device of ``current``; ``h`` is recovered as ``v`` where no spike
    occurred and the pre-reset value where one did (spikingjelly stores only the post-reset potential).
    """
    from spikingjelly.activation_based import functional, neuron

    tau = _tau_steps(tau_ms, dt_ms)
    check_float("v_threshold", v_threshold)
    check_float("v_reset", v_reset)
    if v_reset >= v_threshold:
        raise ValueError(f"v_reset must be below v_threshold, got v_reset={v_reset}, v_threshold={v_threshold}")
    x = torch.as_tensor(current, dtype=torch.float32)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"current must be [T] or [T, N], got shape {tuple(x.shape)}")
    node = neuron.LIFNode(tau=tau, v_threshold=v_threshold, v_reset=v_reset, step_mode="m", store_v_seq=True)
    with torch.no_grad():
        spikes = node(x)
        v = node.v_seq.clone()
    functional.reset_net(node)
    # Recompute the pre-reset potential H[t] from V[t-1] (the update equation above).
    v_prev = torch.cat([torch.full_like(v[:1], v_reset), v[:-1]])
    h = v_prev + (x - (v_prev - v_reset)) / tau
    return LIFRun(v=v, h=h, spikes=spikes)


def first_spike_step(current: float, *, tau_ms: float = 20.0, v_threshold: float = 1.0,
                     dt_ms: float = 1.0) -> float:
    """Closed-form step (1-based) of the first spike for a constant ``current`` from rest (V_reset = 0).

    ``math.inf`` when the current never reaches threshold (``current <= v_threshold``).
    """
    tau = _tau_steps(tau_ms, dt_ms)
    current = check_float("current", current)
    v_threshold = check_float("v_threshold", v_threshold, minimum=0.0, strict_minimum=True)
    if current <= v_threshold:
        return math.inf
    return math.ceil(math.log(1.0 - v_threshold / current) / math.log(1.0 - 1.0 / tau) - 1e-12)


def refractory_steps(refractory_ms: float, dt_ms: float = 1.0) -> int:
    """An absolute refractory period of ``refractory_ms`` as a whole number of steps of ``dt_ms``.

    Raises ``ValueError`` unless ``refractory_ms`` is >= 0 and a multiple of ``dt_ms``.
    """
    refractory_ms = check_float("refractory_ms", refractory_ms, minimum=0.0)
    dt_ms = check_positive("dt_ms", dt_ms)
    steps = round(refractory_ms / dt_ms)
    if abs(steps * dt_ms - refractory_ms) > 1e-9 * max(1.0, refractory_ms):
        raise ValueError(f"refractory_ms must be a multiple of dt_ms={dt_ms}, got {refractory_ms}")
    return steps


def spike_count_closed_form(current: float, n_steps: int, *, refractory_ms: float = 0.0, **kwargs) -> int:
    """Spikes in ``n_steps`` steps of constant ``current`` from rest, reset to 0.

    Without refractoriness ``floor(T / t*)``. With an absolute refractory period of r steps (input
    clamped to 0 for r steps after each spike) the n-th spike falls on step n t* + (n - 1) r, so the
    count is ``floor((T + r) / (t* + r))``. ``kwargs``: ``tau_ms``, ``v_threshold``, ``dt_ms``.
    """
    n_steps = check_int("n_steps", n_steps, minimum=1)
    r = refractory_steps(refractory_ms, kwargs.get("dt_ms", 1.0))
    t_star = first_spike_step(current, **kwargs)
    return 0 if math.isinf(t_star) else (n_steps + r) // (int(t_star) + r)


def firing_rate_closed_form(current: float, *, tau_ms: float = 20.0, v_threshold: float = 1.0,
                            dt_ms: float = 1.0, refractory_ms: float = 0.0, whole_steps: bool = True) -> float:
    """Steady firing rate (Hz) under a constant ``current``: ``1000 / ((t* + r) dt)``, 0 when I <= V_th.

    ``r`` is :func:`refractory_steps` of ``refractory_ms``. ``whole_steps=False`` drops the ceiling
    of t* (the real-valued crossing time ln(1 - V_th/I) / ln(1 - 1/tau)): the smooth curve the
    staircase of the simulation rounds down to.
    """
    r = refractory_steps(refractory_ms, dt_ms)
    t_star = first_spike_step(current, tau_ms=tau_ms, v_threshold=v_threshold, dt_ms=dt_ms)
    if math.isinf(t_star):
        return 0.0
    if not whole_steps:
        t_star = math.log(1.0 - v_threshold / current) / math.log(1.0 - dt_ms / tau_ms)
    return 1000.0 / ((t_star + r) * dt_ms)


def min_current_for_period(k_steps: int, *, tau_ms: float = 20.0, v_threshold: float = 1.0,
                           dt_ms: float = 1.0) -> float:
    """The smallest constant current at which the neuron fires every ``k_steps`` steps (or faster).

    Solves I (1 - (1 - 1/tau)^k) = V_th: I_k = V_th / (1 - (1 - 1/tau)^k). Between I_k and I_(k-1) the
    rate stays at 1000 / (k dt) Hz (a tread of the f-I staircase). I_1 = (tau_ms / dt_ms) V_th: from
    there on the neuron fires on every step, 1000 / dt Hz, the ceiling of this model.
    """
    k_steps = check_int("k_steps", k_steps, minimum=1)
    tau = _tau_steps(tau_ms, dt_ms)
    v_threshold = check_float("v_threshold", v_threshold, minimum=0.0, strict_minimum=True)
    return v_threshold / (1.0 - (1.0 - 1.0 / tau) ** k_steps)


def noisy_population(n_neurons: int, n_steps: int, *, mean: float, std: float,
                     generator: torch.Generator, device: str | torch.device = "cpu") -> torch.Tensor:
    """Gaussian input currents [n_steps, n_neurons] with per-neuron offsets, from an explicit generator.

    Drawn from the CPU ``generator`` and then moved to ``device``, so every device gets the same numbers.
    """
    n_neurons = check_int("n_neurons", n_neurons, minimum=1)
    n_steps = check_int("n_steps", n_steps, minimum=1)
    std = check_float("std", std, minimum=0.0)
    offsets = torch.linspace(-0.5, 0.5, n_neurons) * std * 2
    return (mean + offsets + std * torch.randn(n_steps, n_neurons, generator=generator)).to(device)


def sweep(currents, taus_ms, thresholds, *, n_steps: int, dt_ms: float = 1.0,
          device: str | torch.device = "cpu") -> dict:
    """Simulate every (tau, threshold) pair for all ``currents`` at once (batch over currents).

    Returns ``{"v": [n_tau, n_th, n_I, T], "spikes": same, "currents", "taus_ms", "thresholds"}``:
    computed once (on ``device``) so that widgets only index into it; ``v`` and ``spikes`` come back on
    the CPU, where the figures are drawn.
    """
    currents = torch.as_tensor(currents, dtype=torch.float32)
    v = torch.empty(len(taus_ms), len(thresholds), len(currents), n_steps, device=device)
    s = torch.empty_like(v)
    drive = currents.to(device).expand(n_steps, -1)
    for i, tau in enumerate(taus_ms):
        for j, th in enumerate(thresholds):
            run = simulate_lif(drive, tau_ms=tau, v_threshold=th, dt_ms=dt_ms)
            v[i, j], s[i, j] = run.v.T, run.spikes.T
    return {"v": v.cpu(), "spikes": s.cpu(), "currents": list(map(float, currents)), "taus_ms": list(taus_ms),
            "thresholds": list(thresholds)}


# =========================================================================== 4. the one-shot IF neuron
# Mozafari et al. 2019 (Pattern Recognition 94:87, doi:10.1016/j.patcog.2019.05.015, section 2.2) use
# integrate-and-fire neurons without leak and without reset that may fire at most once per image. With
# the input given as cumulative spike waves S[t] (a unit stays 1 once it has fired) and non-negative
# weights, the potential is V_i[t] = sum_j w_ij S_j[t] and t_i = min{t : V_i[t] > theta}, so V never
# decreases and the whole time course of a layer can be computed at once (one convolution over all T
# steps, or a cumulative sum of input increments) instead of step by step. :func:`one_shot_if_step` is
# the step-by-step form (the reference), :func:`one_shot_if` the all-steps-at-once form; the tests check
# that they agree. Times are integer steps (one step = one spike wave), ``T`` meaning "never". Used by
# ``snnlab.models.mozafari`` and ``notebooks/02_mozafari_rstdp.ipynb``.
class OneShotIFState(NamedTuple):
    """State of :func:`one_shot_if_step`: potential ``v`` and whether the neuron has fired."""

    v: torch.Tensor
    fired: torch.Tensor


def one_shot_if_init(shape, *, dtype=torch.float32, device=None) -> OneShotIFState:
    """Rest state: ``v = 0``, not fired."""
    return OneShotIFState(torch.zeros(shape, dtype=dtype, device=device),
                          torch.zeros(shape, dtype=torch.bool, device=device))


def one_shot_if_step(current: torch.Tensor, state: OneShotIFState, *, threshold: float):
    """One step of the non-leaky one-shot IF neuron.

    .. math:: v[t] = v[t-1] + I[t];\\quad s[t] = 1[v[t] > \\theta]\\,(1 - f[t-1]);\\quad
              f[t] = f[t-1] \\lor s[t]

    No leak, no reset: ``v`` keeps integrating after a spike, but the neuron never fires again.

    Args:
        current: I[t], the input of this step (any shape).
        state: :class:`OneShotIFState` from the previous step.
        threshold: theta (potential units).
    Returns:
        ``(spike, new_state)`` with ``spike`` a bool tensor shaped like ``current``.
    """
    v = state.v + current
    spike = (v > threshold) & ~state.fired
    return spike, OneShotIFState(v, state.fired | spike)


def first_crossing(potentials: torch.Tensor, threshold: float) -> torch.Tensor:
    """First step at which ``V[t] > threshold``, ``T`` where it never happens.

    Counted as the number of leading steps still below threshold,
    ``t_s = sum_t 1[max_{t' <= t} V[t'] <= theta]`` (a cumulative sum over time: much faster than
    an arg-max over the time axis, and exact for any V, monotone or not).

    Args:
        potentials: ``[T, ...]`` potentials V.
        threshold: theta.
    Returns:
        int64 times shaped like ``potentials[0]``.
    """
    if potentials.shape[0] > 255:
        raise ValueError(f"at most 255 time steps are supported, got {potentials.shape[0]}")
    # uint8 arithmetic: summing bools over the time axis as int64 is ~8x slower on CPU
    above = (potentials > threshold).to(torch.uint8)
    below_so_far = (torch.cumsum(above, dim=0, dtype=torch.uint8) == 0).to(torch.uint8)
    return below_so_far.sum(dim=0, dtype=torch.uint8).to(torch.int64)


def first_crossing_monotone(potentials: torch.Tensor, threshold: float) -> torch.Tensor:
    """:func:`first_crossing` for non-decreasing V (non-negative weights, cumulative input):
    ``t_s = T - sum_t 1[V[t] > theta]``. One comparison and one sum; wrong if V ever decreases."""
    if potentials.shape[0] > 255:
        raise ValueError(f"at most 255 time steps are supported, got {potentials.shape[0]}")
    above = (potentials > threshold).to(torch.uint8).sum(dim=0, dtype=torch.uint8)
    return potentials.shape[0] - above.to(torch.int64)


def value_at(potentials: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
    """``V[t_i]`` for each unit (0 where ``t_i = T``, i.e. the unit never fired)."""
    n_steps = potentials.shape[0]
    idx = times.clamp(max=n_steps - 1).unsqueeze(0)
    values = potentials.gather(0, idx).squeeze(0)
    return torch.where(times < n_steps, values, torch.zeros_like(values))


def one_shot_if(currents: torch.Tensor, *, threshold: float):
    """All T steps of the non-leaky one-shot IF neuron at once.

    .. math:: V[t] = \\sum_{t' \\le t} I[t'],\\qquad t_s = \\min\\{t: V[t] > \\theta\\}

    Args:
        currents: ``[T, ...]`` inputs I per step.
        threshold: theta.
    Returns:
        ``(times, potentials)``: int64 first-spike times (``T`` = never) shaped like
        ``currents[0]``, and the potentials ``[T, ...]``.
    """
    threshold = check_float("threshold", threshold)
    potentials = torch.cumsum(currents, dim=0)
    return first_crossing(potentials, threshold), potentials


def spikes_from_times(times: torch.Tensor, n_steps: int, *, cumulative: bool = False) -> torch.Tensor:
    """0/1 spike trains ``[T, ...]`` from first-spike times: one spike at ``t`` (or, with
    ``cumulative``, the paper's spike waves: 1 from ``t`` on)."""
    n_steps = check_int("n_steps", n_steps, minimum=1)
    steps = torch.arange(n_steps, device=times.device).reshape(-1, *([1] * times.ndim))
    hit = (times.unsqueeze(0) <= steps) if cumulative else (times.unsqueeze(0) == steps)
    return hit.to(torch.float32)
