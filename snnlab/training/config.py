"""The ``snnlab train`` configuration: frozen dataclasses that hold every key, its type, default, allowed
values and bounds, and the readers built from them (YAML recipe, command-line overrides, ``--help``).

A run's settings are ``TrainConfig`` defaults <- YAML recipe (``-c``) <- overrides (``--KEY VALUE``,
``--KEY=VALUE``, dotted for the ``dassdp`` section). Recipe and override values are read as YAML scalars
and checked against the field's type (``--amp false`` is the boolean false; ``--dassdp.sites
classifier,dssa_proj`` or ``[classifier]`` is a list; ``5e-4`` is a number though YAML 1.1 reads it as a
string). A ``dassdp`` key left null takes the chosen variant's value
(:func:`snnlab.plasticity.dassdp.variant_params`); :func:`load_config` writes those values out, so
``--print-config``, ``config.yaml`` and the run card say what ran.

``run()`` and the notebooks use the plain-dict view (:meth:`TrainConfig.to_dict`, what
:func:`load_config` returns): it is what ``config.yaml`` and the checkpoints hold.
"""
import argparse
import dataclasses
import os
import re
import sys
import types
import typing
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

from ..errors import ConfigError, one_line
from ..models.spikingresformer import VARIANTS as MODEL_VARIANTS
from ..plasticity.dassdp import (CONTROLS, GATE_LOSSES, GATES, LATENCIES, READOUTS, SILENT_LATENCIES,
                                 VARIANTS as DASSDP_VARIANTS, DASSDPParams, variant_params)
from ..plasticity.sites import TAPS
from ..utils import check_choice, check_float, check_int

DATASETS = ("digits", "mnist5k", "cifar10", "cifar100", "imagefolder", "cifar10dvs")
FILELESS_DATASETS = ("digits", "mnist5k")  # shipped with a package: data_path would be ignored, so it is refused
LR_SCHEDULES = ("step", "timm")  # see snnlab.training.schedule


def setting(default: Any, doc: str, *, choices: tuple | None = None, minimum: float | None = None,
            maximum: float | None = None, above: float | None = None):
    """A config field: its default, the ``--help`` text, and the values it may take (``above``: a strict
    lower bound)."""
    return field(default=default, metadata={"doc": doc, "choices": choices, "minimum": minimum,
                                            "maximum": maximum, "above": above})


@dataclass(frozen=True)
class DASSDPConfig:
    """The ``dassdp`` section: whether DA-SSDP runs, and the rule's settings. ``null`` (None) takes the
    variant's value; every key except ``enabled`` is a field of :class:`~snnlab.plasticity.dassdp.DASSDPParams`."""

    enabled: bool = setting(False, "apply DA-SSDP after each optimizer step")
    variant: str = setting("paper", "whose defaults fill the keys left null: the public code or the paper's text",
                           choices=DASSDP_VARIANTS)
    warmup_epochs: int = setting(1, "epochs without updates that record (synchrony, loss) for the gate, fitted "
                                    "once at their end", minimum=0)
    a_plus: float | None = setting(None, "potentiation amplitude A+ (dimensionless)", minimum=0.0)
    a_minus: float | None = setting(None, "baseline depression A- (A_b in the released code; dimensionless)",
                                    minimum=0.0)
    sigma: float | None = setting(None, "width of the Gaussian timing kernel (time steps)", above=0.0)
    latency: str | None = setting(None, "which spike gives a unit's latency (the released code reads the last)",
                                  choices=LATENCIES)
    gate: str = setting("fitted", "fitted: dopamine gate k from the warm-up; constant: k = 0, G = 1 (the control "
                                  "that removes the dopamine signal)", choices=GATES)
    sites: tuple[str, ...] | None = setting(None, "plastic weights: sites the model names (dssa_proj) or dotted "
                                                  "names of Linear / 1x1 Conv2d modules (classifier)")
    dssa_tap: str | None = setting(None, "where dssa_proj reads its spikes: synapse (the LIFs on both sides of "
                                         "the projection, per position) or block (the DSSA block's input/output)",
                                   choices=TAPS)
    classifier_readout: str | None = setting(None, "classifier indicators: time_mean (time-averaged input/logits "
                                                   "positive) or any (positive at some step)", choices=READOUTS)
    gate_loss: str | None = setting(None, "loss paired with each sample's synchrony in the warm-up: sample (its "
                                          "own) or batch (the batch mean, as released)", choices=GATE_LOSSES)
    dssa_silent_latency: str | None = setting(None, "latency of a silent unit at dssa_proj: T or zero (released)",
                                              choices=SILENT_LATENCIES)
    control: str = setting("none", "random: each dW replaced by seeded noise of the same norm (a control)",
                           choices=CONTROLS)
    ddp_sync: bool = setting(True, "all-reduce statistics and updates so every DDP rank applies the same dW "
                                   "(the public code does not: its replicas drift apart)")

    def __post_init__(self):
        _check_fields(self, "dassdp.")
        try:
            self.params()  # the combination must make a rule
        except ValueError as exc:  # the rule's checks name its field, not the section
            raise ConfigError(f"dassdp.{exc}") from None

    def params(self) -> DASSDPParams:
        """The rule's parameters: the variant's values where a key is null."""
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("enabled", "variant")}
        return variant_params(self.variant, **values)

    def resolved(self) -> "DASSDPConfig":
        """This section with every null key replaced by the variant's value."""
        params = self.params()
        return dataclasses.replace(self, **{f.name: getattr(params, f.name) for f in fields(self)
                                            if f.name not in ("enabled", "variant")})


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of one ``snnlab train`` run (the keys of a recipe under ``configs/``)."""

    model: str = setting("nano", "SpikingResformer variant (nano: the CPU default, ~0.65M parameters)",
                         choices=tuple(MODEL_VARIANTS))
    T: int = setting(4, "time steps; a static image is repeated T times", minimum=1)
    img_size: int = setting(16, "input side in pixels after resizing (digits: 8x8 upsampled)", minimum=1)
    drop_path: float = setting(0.0, "stochastic-depth rate of the residual branches", minimum=0.0, maximum=0.99)
    bn_momentum: float | None = setting(0.1, "BatchNorm running-statistics momentum; null = cumulative average "
                                             "(runs under ~80 steps)", minimum=0.0, maximum=1.0)
    dataset: str = setting("digits", "what to train on (digits and mnist5k ship with the kit)", choices=DATASETS)
    data_path: str | None = setting(None, "dataset folder (see data/README.md); null for digits and mnist5k")
    split_seed: int = setting(0, "fixes the train/val(/test) split, apart from seed", minimum=0)
    val_fraction: float = setting(0.1, "share of the training data held out for model selection when the "
                                       "dataset has no validation split", minimum=0.0, maximum=0.5)
    test_fraction: float = setting(0.1, "cifar10dvs without train/ and test/ folders: share held out for test",
                                   minimum=0.0, maximum=0.5)
    max_train_samples: int = setting(0, "use only the first n training samples (0 = all): smoke tests, quick runs",
                                     minimum=0)
    max_eval_samples: int = setting(0, "the same for validation and test (0 = all)", minimum=0)
    epochs: int = setting(10, "epochs of the schedule (warm-up + cosine); the run trains epochs + cooldown_epochs",
                          minimum=1)
    batch_size: int = setting(64, "training samples per optimizer step, per process", minimum=1)
    lr: float = setting(5.0e-4, "peak AdamW learning rate", minimum=0.0)
    min_lr: float = setting(1.0e-5, "learning rate at the end of the cosine and in the cooldown", minimum=0.0)
    weight_decay: float = setting(0.01, "AdamW weight decay (none on biases and norm weights)", minimum=0.0)
    lr_schedule: str = setting("step", "step: set every optimizer step, linear warm-up to lr then cosine to min_lr "
                                       "at the end of epochs; timm: per epoch as the released code (warm-up from "
                                       "warmup_lr, cosine over all epochs)", choices=LR_SCHEDULES)
    warmup_epochs: int = setting(1, "epochs of linear learning-rate warm-up", minimum=0)
    warmup_lr: float = setting(1.0e-5, "lr_schedule timm: the learning rate of the first warm-up epoch",
                               minimum=0.0)
    cooldown_epochs: int = setting(0, "epochs at min_lr after the schedule's epochs", minimum=0)
    label_smoothing: float = setting(0.1, "weight moved from the true class to a uniform target", minimum=0.0,
                                     maximum=0.99)
    mixup_alpha: float = setting(0.0, "Beta(alpha, alpha) of the mixup weight; 0 = off", minimum=0.0)
    mixup_prob: float = setting(1.0, "probability that a batch is mixed", minimum=0.0, maximum=1.0)
    hflip: bool = setting(False, "mirror half of the training images at random")
    crop_padding: int = setting(0, "random crop after zero padding by this many pixels (0 = off)", minimum=0)
    clip_grad: float | None = setting(None, "clip the gradient norm to this value (null = no clipping)", above=0.0)
    amp: bool = setting(True, "float16 autocast and gradient scaling (acts on CUDA only)")
    seed: int = setting(0, "initialisation, sample order, augmentation and DA-SSDP noise", minimum=0)
    device: str = setting("auto", "auto, cpu, cuda or cuda:N")
    workers: int = setting(0, "DataLoader worker processes for file datasets", minimum=0)
    threads: int = setting(0, "torch CPU threads per process (0 = torch's default; 1 on a busy machine)",
                           minimum=0)
    progress: bool = setting(True, "progress bar and one line per epoch")
    log_every: int = setting(1, "write DA-SSDP diagnostics every n steps", minimum=1)
    eval_batch_size: int = setting(256, "samples per evaluation batch", minimum=1)
    dassdp: DASSDPConfig = field(default_factory=DASSDPConfig)

    def __post_init__(self):
        _check_fields(self, "")
        if self.dataset in FILELESS_DATASETS and self.data_path is not None:
            # refused rather than ignored: a user who names a folder expects it to be read
            raise ConfigError(f"data_path/--data-path {self.data_path!r} is set, but dataset {self.dataset!r} reads "
                              f"no files (it ships with its package); drop --data-path, or choose a dataset that "
                              f"reads files: {', '.join(d for d in DATASETS if d not in FILELESS_DATASETS)}")
        if self.dataset in ("cifar10", "cifar100") and self.img_size != 32:
            raise ConfigError(f"img_size must be 32 for {self.dataset}, got {self.img_size}")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "TrainConfig":
        """A config from a (nested) mapping such as :meth:`to_dict` or ``config.yaml`` gives; values are read
        as for a recipe. Raises :class:`ConfigError` naming a bad key."""
        return _build({key: _read_key(key, value) for key, value in _flatten(values).items()})

    def to_dict(self) -> dict:
        """The plain view (lists, no tuples) that ``run()``, ``config.yaml`` and checkpoints use."""
        return _plain(self)

    def resolved(self) -> "TrainConfig":
        """The config with the DA-SSDP keys left null set to the variant's values."""
        return dataclasses.replace(self, dassdp=self.dassdp.resolved())


# --------------------------------------------------------------------------- fields as data
def _type_of(tp) -> tuple[type, bool]:
    """(base type, whether null is allowed) of a field annotation such as ``float | None``."""
    args = typing.get_args(tp)
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        (tp,) = [a for a in args if a is not type(None)]
        return typing.get_origin(tp) or tp, True
    return typing.get_origin(tp) or tp, False


def _keys(cls=TrainConfig, prefix: str = "") -> dict[str, dataclasses.Field]:
    """Every dotted key of ``cls`` and its field, in declaration order."""
    out = {}
    for f in fields(cls):
        if is_dataclass(f.type):
            out.update(_keys(f.type, f"{prefix}{f.name}."))
        else:
            out[f"{prefix}{f.name}"] = f
    return out


KEYS = _keys()
_WORDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string", tuple: "a list of names"}


def _check_value(key: str, value: Any, base: type) -> Any:
    """``value`` as ``base``, or a ``ValueError`` naming ``key`` (a boolean is never a number)."""
    ok = {bool: isinstance(value, bool),
          int: isinstance(value, int) and not isinstance(value, bool),
          float: isinstance(value, (int, float)) and not isinstance(value, bool),
          str: isinstance(value, str),
          tuple: isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)}[base]
    if not ok:
        raise ValueError(f"{key} must be {_WORDS[base]}, got {value!r}")
    return float(value) if base is float else tuple(value) if base is tuple else value


def _check_fields(obj, prefix: str) -> None:
    """Check (and normalise: int -> float, list -> tuple) each field of a frozen config against its
    annotation and metadata."""
    try:
        for f in fields(obj):
            value = getattr(obj, f.name)
            if is_dataclass(f.type):
                if not isinstance(value, f.type):
                    raise ValueError(f"{prefix}{f.name} must be a {f.type.__name__}, got {value!r}")
                continue
            key, (base, nullable) = prefix + f.name, _type_of(f.type)
            if value is None and nullable:
                continue
            value = _check_value(key, value, base)
            meta = f.metadata
            if meta["choices"] is not None:
                check_choice(key, value, meta["choices"])
            if base is int:
                check_int(key, value, minimum=meta["minimum"], maximum=meta["maximum"])
            elif base is float:
                lower = meta["minimum"] if meta["above"] is None else meta["above"]
                check_float(key, value, minimum=lower, maximum=meta["maximum"],
                            strict_minimum=meta["above"] is not None)
            object.__setattr__(obj, f.name, value)
    except ConfigError:
        raise
    except ValueError as exc:  # the check_* helpers raise ValueError naming the key
        raise ConfigError(str(exc)) from None


def _read(key: str, value: Any) -> Any:
    """A recipe or override value for ``key``: a string is read as a YAML scalar unless the key holds
    text; the result is checked against the key's type."""
    base, nullable = _type_of(KEYS[key].type)
    if isinstance(value, str) and base is str:
        return None if nullable and value.strip() in ("", "~", "null", "Null", "NULL") else value
    if isinstance(value, str):
        value = yaml.safe_load(value) if value.strip() else None
        if base is tuple and isinstance(value, str):
            value = [s.strip() for s in value.split(",") if s.strip()]
        if isinstance(value, str) and base in (int, float):
            try:  # YAML 1.1 reads "5e-4" (no dot) as a string; a number is meant
                value = base(value)
            except ValueError:
                pass
    if value is None:
        return None  # the dataclass says whether null is allowed
    if base is str and not isinstance(value, (list, dict)):
        return str(value)  # a recipe's `device: 0` is the text "0"
    return _check_value(key, value, base)


def _flatten(d: Mapping, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _read_key(key: str, value: Any, where: str = "") -> Any:
    if key not in KEYS:
        raise ConfigError(f"{where}unknown config key {key!r}; known keys: {', '.join(sorted(KEYS))}")
    try:
        return _read(key, value)
    except ValueError as exc:
        raise ConfigError(f"{where}{exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}{key}: {one_line(exc)}") from None


def _build(values: Mapping[str, Any]) -> TrainConfig:
    """A :class:`TrainConfig` from read values under dotted keys (the others keep their defaults)."""
    top = {k: v for k, v in values.items() if "." not in k}
    section = {k.split(".", 1)[1]: v for k, v in values.items() if k.startswith("dassdp.")}
    return TrainConfig(**top, dassdp=DASSDPConfig(**section))


def _plain(obj) -> dict:
    return {f.name: (_plain(v) if is_dataclass(v) else list(v) if isinstance(v, tuple) else v)
            for f in fields(obj) for v in [getattr(obj, f.name)]}


# --------------------------------------------------------------------------- files and overrides
def read_yaml_config(path: str | os.PathLike) -> dict:
    """A YAML recipe as a dict, through ``yaml.safe_load`` (plain YAML only: no ``!!python/...`` tags).

    Raises :class:`ConfigError` naming the file for a missing file, malformed YAML, an unsafe tag or
    a top level that is not a mapping."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"-c/--config {path}: no such file" + ("" if not p.exists() else " (a folder)")
                          + "; the recipes are under configs/")
    try:
        loaded = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.constructor.ConstructorError as exc:
        mark = f" (line {exc.problem_mark.line + 1})" if exc.problem_mark is not None else ""
        raise ConfigError(f"-c/--config {path}{mark}: refused: {exc.problem}; snnlab configs are plain YAML "
                          "(numbers, strings, lists, mappings), never Python objects") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise ConfigError(f"-c/--config {path}{where}: not valid YAML: {getattr(exc, 'problem', None) or one_line(exc)}") from None
    except (UnicodeDecodeError, OSError) as exc:
        raise ConfigError(f"-c/--config {path}: cannot be read as text ({exc})") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"-c/--config {path}: expected a mapping of config keys at the top level, "
                          f"found a {type(loaded).__name__}")
    return loaded


def load_config(path: str | os.PathLike | None = None, overrides: Mapping[str, Any] | None = None) -> dict:
    """``TrainConfig`` defaults <- YAML file <- overrides (dotted keys), DA-SSDP nulls resolved, as a dict.

    Unknown keys, bad values and unreadable or unsafe files raise :class:`ConfigError` (a
    ``ValueError``) naming the key or file."""
    values = {}
    if path is not None:
        for key, value in _flatten(read_yaml_config(path)).items():
            values[key] = _read_key(key, value, where=f"config {path}: ")
    for key, value in (overrides or {}).items():
        values[key] = _read_key(key, value)
    return _build(values).resolved().to_dict()


def validate_config(cfg: Mapping[str, Any]) -> None:
    """Check every value of a config dict; a bad one raises :class:`ConfigError` naming it."""
    TrainConfig.from_dict(cfg)


def dassdp_params(cfg: Mapping[str, Any]) -> DASSDPParams:
    """The DA-SSDP rule parameters of a config dict (the variant's values where a key is null)."""
    return TrainConfig.from_dict(cfg).dassdp.params()


# --------------------------------------------------------------------------- the command line
class _HelpFormatter(argparse.HelpFormatter):
    """Shows a key once (``--img_size INT``), not with its hyphenated alias."""

    def _format_action_invocation(self, action):
        if action.dest in KEYS:
            return f"{action.option_strings[0]} {self._format_args(action, action.metavar)}"
        return super()._format_action_invocation(action)


def _describe(key: str, f: dataclasses.Field) -> tuple[str, str]:
    """(metavar, help) of a key for ``--help``: its type, default and allowed values."""
    base, nullable = _type_of(f.type)
    meta = f.metadata
    metavar = ("{" + ",".join(meta["choices"]) + "}" if meta["choices"] else
               {bool: "BOOL", int: "INT", float: "FLOAT", str: "TEXT", tuple: "LIST"}[base])
    if nullable:
        metavar += "|null"
    if f.default is None and key.startswith("dassdp."):
        name = key.split(".", 1)[1]
        per_variant = ", ".join(f"{v}: {_yaml_scalar(getattr(variant_params(v), name))}" for v in DASSDP_VARIANTS)
        default = f"null = the variant's ({per_variant})"
    else:
        default = _yaml_scalar(f.default)
    bounds = [f">= {meta['minimum']}" if meta["minimum"] is not None else "",
              f"> {meta['above']}" if meta["above"] is not None else "",
              f"<= {meta['maximum']}" if meta["maximum"] is not None else ""]
    bounds = ", ".join(b for b in bounds if b)
    text = f"{meta['doc']} [default: {default}{'; ' + bounds if bounds else ''}]"
    return metavar, text.replace("%", "%%")


def _yaml_scalar(value) -> str:
    value = list(value) if isinstance(value, tuple) else value
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("\n...").strip()


# argparse (Python < 3.13) takes "-1e-5" for an option; glued to its key, the key's own check judges it
_NEGATIVE = re.compile(r"-[\d.]")


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, dict]:
    """The command line as (the run's flags, the config overrides as strings by dotted key).

    Overrides are read and checked by :func:`load_config`, inside the command's error boundary, so a bad
    or unknown key is one line naming it."""
    parser = argparse.ArgumentParser(
        prog="snnlab train", description="Train SpikingResformer (optionally with DA-SSDP) from a YAML config.",
        epilog="Every config key is an override (--KEY VALUE or --KEY=VALUE; VALUE read as YAML): --epochs 3 "
               "--amp false --dassdp.enabled true --dassdp.sites classifier,dssa_proj. A key's underscores may be "
               "hyphens (--data-path, --img-size). --print-config shows the resolved config.",
        allow_abbrev=False, formatter_class=_HelpFormatter)
    parser.add_argument("-c", "--config", help="YAML recipe (default: the built-in defaults below)")
    parser.add_argument("--output-dir", help="folder for checkpoints, metrics and results")
    parser.add_argument("--resume", help="checkpoint (or run folder) to continue from")
    parser.add_argument("--transfer", help="checkpoint whose backbone initialises this model (head replaced)")
    parser.add_argument("--test-only", action="store_true", help="evaluate a checkpoint (--resume or output-dir/best.pth)")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    parser.add_argument("--debug", action="store_true",
                        help="show the Python traceback for input errors too (or set SNNLAB_DEBUG=1)")
    groups = {"": parser.add_argument_group("config keys"),
              "dassdp.": parser.add_argument_group("config keys of the dassdp section (DA-SSDP)")}
    options = set()
    for key, f in KEYS.items():
        leaf = key.rsplit(".", 1)[-1]
        names = [f"--{key}"] + ([f"--{key[:-len(leaf)]}{leaf.replace('_', '-')}"] if "_" in leaf else [])
        metavar, text = _describe(key, f)
        groups["dassdp." if key.startswith("dassdp.") else ""].add_argument(
            *names, dest=key, default=argparse.SUPPRESS, metavar=metavar, help=text)
        options.update(names)
    glued: list[str] = []
    for token in sys.argv[1:] if argv is None else argv:
        if glued and glued[-1] in options and _NEGATIVE.match(token):
            glued[-1] += "=" + token
        else:
            glued.append(token)
    args, rest = parser.parse_known_args(glued)
    overrides = {key: vars(args).pop(key) for key in KEYS if key in vars(args)}
    # anything else that looks like --key value goes to load_config, which names an unknown key
    i = 0
    while i < len(rest):
        token = rest[i]
        if not token.startswith("--") or len(token) < 3:
            parser.error(f"unexpected argument {token!r} (overrides look like --key value)")
        key, eq, value = token[2:].partition("=")
        if not eq:
            if i + 1 >= len(rest):
                parser.error(f"override {token} needs a value")
            value = rest[i + 1]
        i += 1 if eq else 2
        overrides[key.replace("-", "_") if "." not in key else key] = value
    return args, overrides
