"""The parameters of each notebook, checked: one frozen dataclass per notebook, all eight here.

``NotebookNNParams`` holds the parameters of ``notebooks/NN_*.ipynb``: its fields are the names and
default values of that notebook's ``parameters`` cell (``tests/test_notebook_params.py`` reads the
notebooks to keep the two equal), and ``__post_init__`` refuses a bad value with a ``ValueError`` that
names the parameter and what is allowed. The notebook's validation cell builds it from the parameters
(papermill has injected any overrides by then), so a bad ``-p`` fails in that cell, before any work.
Numbers come back normalised (a float parameter given as ``200`` is ``200.0``).

Why one module for all eight: "the parameters of notebook 04" is then one name in one file, whether
or not the notebook has an ``experiments`` module (00, 04, 05 and 07 have none), and the checks of
notebook 03 may read ``snnlab.train``'s dataset lists without the experiments layer importing the
command line. It sits just below the notebooks: nothing else in snnlab imports it
(``tests/test_architecture.py`` checks).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from . import train
from .experiments.mozafari import read_trainer_checkpoint
from .models.spikingresformer import VARIANTS
from .neurons import refractory_steps
from .plasticity.florian import ORDERINGS
from .plasticity.traces import TRACE_MODES
from .utils import check_choice, check_device, check_float, check_int, check_path, check_positive

__all__ = ["Notebook00Params", "Notebook01Params", "Notebook02Params", "Notebook03Params", "Notebook04Params",
           "Notebook05Params", "Notebook06Params", "Notebook07Params", "BY_NOTEBOOK"]


@dataclass(frozen=True)
class _Checked:
    """What every notebook's parameters share: ``seed`` and ``device`` (the first two of every parameters
    cell), and keeping the normalised values."""

    notebook: ClassVar[str]
    seed: int = 0
    device: str = "cpu"

    def _keep(self, name: str, value) -> None:
        object.__setattr__(self, name, value)  # frozen: the one write, inside __post_init__

    def _ints(self, **minimums: int) -> None:
        """Check integer parameters against their minimums, in the order given, and keep them."""
        for name, minimum in minimums.items():
            self._keep(name, check_int(name, getattr(self, name), minimum=minimum))

    def _check_device(self) -> None:
        # the spelling only: pick_device, in the notebook, asks whether this machine has it
        self._keep("device", check_device("device", self.device))


@dataclass(frozen=True)
class Notebook00Params(_Checked):
    """``00_welcome``: one LIF neuron, its closed form, a refractory period and a noisy population."""

    notebook: ClassVar[str] = "00_welcome"
    tau: float = 20.0
    v_threshold: float = 1.0
    input_current: float = 1.5
    n_steps: int = 200
    dt: float = 1.0
    n_neurons: int = 20
    refractory_ms: float = 2.0

    def __post_init__(self):
        self._keep("tau", check_positive("tau", self.tau))
        self._keep("dt", check_positive("dt", self.dt))
        if self.tau <= self.dt:
            raise ValueError(f"tau must be larger than dt (got tau={self.tau}, dt={self.dt})")
        self._keep("v_threshold", check_positive("v_threshold", self.v_threshold))
        self._keep("input_current", check_float("input_current", self.input_current))
        refractory_steps(self.refractory_ms, self.dt)  # >= 0 and a whole number of steps
        self._keep("refractory_ms", check_float("refractory_ms", self.refractory_ms))
        self._ints(n_steps=1, n_neurons=1, seed=0)
        self._check_device()


@dataclass(frozen=True)
class Notebook01Params(_Checked):
    """``01_florian_stdp``: the Florian 2007 worked example and the reward task."""

    notebook: ClassVar[str] = "01_florian_stdp"
    ordering: str = "same-step"
    trace_mode: str = "all-to-all"
    n_trials: int = 30
    trial_ms: int = 200
    xor_epochs: int = 12
    xor_seeds: int = 2

    def __post_init__(self):
        self._ints(seed=0)
        check_choice("ordering", self.ordering, ORDERINGS)
        check_choice("trace_mode", self.trace_mode, TRACE_MODES)
        self._ints(n_trials=1, trial_ms=10, xor_epochs=1, xor_seeds=1)
        self._check_device()


@dataclass(frozen=True)
class Notebook02Params(_Checked):
    """``02_mozafari_rstdp``: the data, the epochs of each layer and the checkpoint file.

    Reads ``checkpoint`` when it exists, so a damaged or unsafe file fails here, before any work.
    """

    notebook: ClassVar[str] = "02_mozafari_rstdp"
    dataset: str = "mnist5k"
    data_path: str = ""
    n_train: int = 0
    stdp_epochs_1: int = 2
    stdp_epochs_2: int = 4
    rstdp_epochs: int = 60
    rstdp_block: int = 100
    checkpoint: str = ""

    def __post_init__(self):
        self._ints(seed=0, n_train=0, stdp_epochs_1=0, stdp_epochs_2=0, rstdp_epochs=1, rstdp_block=1)
        if not isinstance(self.data_path, str) or not isinstance(self.checkpoint, str):
            raise ValueError("data_path and checkpoint must be strings ('' for none)")
        check_choice("dataset", self.dataset, ("mnist5k", "digits", "mnist"))
        if self.dataset == "mnist":
            check_path("data_path", self.data_path, kind="dir",
                       hint="dataset='mnist' reads the four MNIST IDX files there")
        elif self.data_path:  # refused, not ignored: a path that is silently unused hides a typo in `dataset`
            raise ValueError(f"data_path={self.data_path!r} is read only with dataset='mnist'; "
                             f"dataset={self.dataset!r} ships with its package. Set dataset='mnist' or drop data_path.")
        if self.checkpoint and Path(self.checkpoint).exists():
            read_trainer_checkpoint(self.checkpoint)
        self._check_device()


@dataclass(frozen=True)
class Notebook03Params(_Checked):
    """``03_da_ssdp_spikingresformer``: model, data, training length and the DA-SSDP warm-up."""

    notebook: ClassVar[str] = "03_da_ssdp_spikingresformer"
    model: str = "nano"
    dataset: str = "mnist5k"
    data_path: str | None = None
    img_size: int = 8
    epochs: int = 3
    n_seeds: int = 1
    batch_size: int = 32
    lr: float = 2e-3
    dassdp_warmup: int = 1
    max_train_samples: int = 768
    max_eval_samples: int = 0

    def __post_init__(self):
        self._ints(seed=0)
        check_choice("model", self.model, tuple(VARIANTS))
        check_choice("dataset", self.dataset, train.DATASETS)
        self._ints(img_size=1, epochs=1, n_seeds=1, batch_size=1, dassdp_warmup=0, max_train_samples=0,
                   max_eval_samples=0)
        check_positive("lr", self.lr)
        if self.dataset in train.FILELESS_DATASETS:
            if self.data_path is not None:
                raise ValueError(f"data_path={self.data_path!r} is set, but dataset={self.dataset!r} ships with its "
                                 "package and reads no files: leave data_path None")
        elif self.data_path is None:
            raise ValueError(f"dataset={self.dataset!r} needs data_path (see data/README.md); "
                             f"{' and '.join(train.FILELESS_DATASETS)} ship with the kit")
        else:
            check_path("data_path", self.data_path, kind="dir",
                       hint="See data/README.md for the layout of each dataset.")
        if self.dassdp_warmup >= self.epochs:
            raise ValueError(f"dassdp_warmup={self.dassdp_warmup} must be < epochs={self.epochs}, "
                             "or DA-SSDP never acts")
        self._check_device()


@dataclass(frozen=True)
class Notebook04Params(_Checked):
    """``04_bptt_tbptt_eprop``: network size and the training of BPTT, truncated BPTT and e-prop."""

    notebook: ClassVar[str] = "04_bptt_tbptt_eprop"
    n_hidden: int = 64
    epochs: int = 10
    n_train: int = 1259
    recall_epochs: int = 12
    delay_steps: int = 20
    lr: float = 0.01

    def __post_init__(self):
        self._ints(seed=0, n_hidden=2, epochs=1, n_train=32, recall_epochs=1, delay_steps=1)
        self._keep("lr", check_float("lr", self.lr, minimum=0.0, strict_minimum=True))
        self._check_device()


@dataclass(frozen=True)
class Notebook05Params(_Checked):
    """``05_meta_learning``: the model and the inner and outer loops of MAML, FOMAML and Reptile."""

    notebook: ClassVar[str] = "05_meta_learning"
    model: str = "snn"
    n_hidden: int = 64
    meta_iterations: int = 300
    meta_batch: int = 8
    inner_lr: float = 0.1
    inner_steps: int = 5
    n_test_tasks: int = 50

    def __post_init__(self):
        self._ints(seed=0)
        check_choice("model", self.model, ("snn", "mlp"))
        self._ints(n_hidden=2, meta_iterations=1, meta_batch=1)
        self._keep("inner_lr", check_float("inner_lr", self.inner_lr, minimum=0.0, strict_minimum=True))
        self._ints(inner_steps=1, n_test_tasks=1)
        self._check_device()


@dataclass(frozen=True)
class Notebook06Params(_Checked):
    """``06_three_factor_homeostasis_stp``: R-STDP trials and delay, the scaling run and its target."""

    notebook: ClassVar[str] = "06_three_factor_homeostasis_stp"
    n_trials: int = 80
    delay_ms: float = 200.0
    scaling_duration_ms: float = 20000.0
    target_rate_hz: float = 10.0

    def __post_init__(self):
        self._ints(seed=0, n_trials=1)
        self._keep("delay_ms", check_float("delay_ms", self.delay_ms, minimum=0.0))
        self._keep("scaling_duration_ms", check_float("scaling_duration_ms", self.scaling_duration_ms, minimum=1000.0))
        self._keep("target_rate_hz", check_float("target_rate_hz", self.target_rate_hz, minimum=1.0, maximum=50.0))
        self._check_device()


@dataclass(frozen=True)
class Notebook07Params(_Checked):
    """``07_structural_continual_federated_evolution``: the length of each of the four experiments."""

    notebook: ClassVar[str] = "07_structural_continual_federated_evolution"
    rewiring_ms: float = 15000.0
    ewc_epochs: int = 4
    fed_rounds: int = 10
    generations: int = 100

    def __post_init__(self):
        self._ints(seed=0)
        self._keep("rewiring_ms", check_float("rewiring_ms", self.rewiring_ms, minimum=500.0))
        self._ints(ewc_epochs=1, fed_rounds=1, generations=1)
        self._check_device()


#: notebook stem -> its parameters class
BY_NOTEBOOK: dict[str, type[_Checked]] = {cls.notebook: cls for cls in (
    Notebook00Params, Notebook01Params, Notebook02Params, Notebook03Params, Notebook04Params, Notebook05Params,
    Notebook06Params, Notebook07Params)}
