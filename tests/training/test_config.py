"""The typed ``snnlab train`` config: the dataclasses are the one source of keys, types, defaults, choices and
bounds; ``--help`` is generated from them; Python callers get the same checks as the command line."""
import dataclasses

import pytest

from snnlab import train
from snnlab.errors import ConfigError
from snnlab.plasticity.dassdp import DASSDPParams
from snnlab.training.config import KEYS, DASSDPConfig, TrainConfig, parse_args


def test_every_key_of_the_resolved_config_is_a_dataclass_field():
    cfg = train.load_config(None)
    assert {k for k in cfg if k != "dassdp"} | {f"dassdp.{k}" for k in cfg["dassdp"]} == set(KEYS)
    assert list(cfg) == [f.name for f in dataclasses.fields(TrainConfig)]          # --print-config's order
    # the section is the rule's parameters plus the switch: nothing a rule does not know
    assert {f.name for f in dataclasses.fields(DASSDPConfig)} - {"enabled"} == {
        f.name for f in dataclasses.fields(DASSDPParams)}


def test_help_lists_every_key_with_its_type_and_default(capsys):
    with pytest.raises(SystemExit) as stop:
        train.main(["--help"])
    assert stop.value.code == 0
    text = " ".join(capsys.readouterr().out.split())      # argparse wraps lines
    for key in KEYS:
        assert f"--{key} " in text, key
    assert "--lr FLOAT peak AdamW learning rate [default: 0.0005; >= 0.0]" in text
    assert "--amp BOOL" in text and "--dassdp.sites LIST|null" in text
    assert "--lr_schedule {step,timm}" in text
    assert "null = the variant's (released: last, paper: first)" in text            # dassdp.latency


def test_python_callers_get_the_command_lines_checks():
    with pytest.raises(ConfigError, match="epochs must be an integer, got 2.5"):
        TrainConfig(epochs=2.5)
    with pytest.raises(ConfigError, match="mixup_prob must be <= 1.0"):
        TrainConfig(mixup_prob=1.5)
    with pytest.raises(ConfigError, match="dassdp.gate must be one of"):
        DASSDPConfig(gate="open")
    assert TrainConfig(lr=1).lr == 1.0 and isinstance(TrainConfig(lr=1).lr, float)
    assert DASSDPConfig(sites=["classifier"]).sites == ("classifier",)
    cfg = TrainConfig(dassdp=DASSDPConfig(variant="released"))
    assert cfg.dassdp.latency is None and cfg.resolved().dassdp.latency == "last"
    assert TrainConfig.from_dict(cfg.resolved().to_dict()) == cfg.resolved()       # the dict view round-trips
    assert train.load_config(None, {"dassdp.variant": "released"}) == cfg.resolved().to_dict()


def test_overrides_take_hyphens_and_negative_numbers_reach_the_check():
    args, over = parse_args(["--img-size", "8", "--lr", "-1e-5", "--data-path", "/d", "--dassdp.warmup-epochs",
                             "2", "--output-dir", "o"])
    assert over == {"img_size": "8", "lr": "-1e-5", "data_path": "/d", "dassdp.warmup_epochs": "2"}
    assert args.output_dir == "o"
    with pytest.raises(ConfigError, match=r"lr must be >= 0.0, got -1e-05"):
        train.load_config(None, over)


def test_a_null_text_key_is_null_and_paths_become_text(tmp_path):
    cfg = train.load_config(None, {"dassdp.variant": "released", "dassdp.latency": "null", "data_path": "null"})
    assert cfg["dassdp"]["latency"] == "last" and cfg["data_path"] is None
    cfg = train.load_config(None, {"dataset": "imagefolder", "data_path": tmp_path})
    assert cfg["data_path"] == str(tmp_path)                                       # config.yaml can hold it
