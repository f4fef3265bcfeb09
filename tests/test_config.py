"""Config loading: typed values, unknown keys and wrong types rejected by name, command-line overrides."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest

from digit_studio.config import (
    ClassifierConfig,
    LineReaderConfig,
    VAEConfig,
    add_config_arguments,
    config_from_args,
    load_config,
    to_dict,
)
from digit_studio.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_committed_config_loads_typed() -> None:
    config = load_config(ClassifierConfig, ROOT / "configs" / "classifier.yaml")
    assert isinstance(config.training.lr, float)
    assert config.model.stages and all(isinstance(w, int) for stage in config.model.stages for w in stage)
    assert config.output.checkpoint == "checkpoints/classifier.safetensors"


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("training:\n  lerning_rate: 0.1\n", "training.lerning_rate"),
        ("colour: blue\n", "colour"),
        ("training:\n  epochs: many\n", "training.epochs"),
        ("training:\n  epochs: 2.5\n", "training.epochs"),
        ("data:\n  download: 'yes'\n", "data.download"),
        ("model:\n  stages: [[16], oops]\n", "model.stages[1]"),
        ("augment: 3\n", "augment"),
    ],
)
def test_bad_keys_and_types_are_named(tmp_path: Path, text: str, named: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"'{named}'")):
        load_config(ClassifierConfig, write(tmp_path, text))


def test_integers_are_accepted_for_floats(tmp_path: Path) -> None:
    config = load_config(ClassifierConfig, write(tmp_path, "training:\n  lr: 1\n"))
    assert config.training.lr == 1.0 and isinstance(config.training.lr, float)


def test_every_value_overridable_from_the_command_line() -> None:
    parser = argparse.ArgumentParser()
    add_config_arguments(parser, ClassifierConfig, str(ROOT / "configs" / "classifier.yaml"))
    args = parser.parse_args(
        ["--training.epochs", "3", "--model.stages", "[[8], [16]]", "--device", "cpu", "--data.download", "false"]
    )
    config = config_from_args(args, ClassifierConfig)
    assert config.training.epochs == 3
    assert config.model.stages == [[8], [16]]
    assert config.device == "cpu" and config.data.download is False
    flags = {a.option_strings[0] for a in parser._actions if a.option_strings}
    assert {"--seed", "--augment.shear_deg", "--output.results_dir", "--training.label_smoothing"} <= flags


def test_override_with_wrong_type_is_rejected() -> None:
    parser = argparse.ArgumentParser()
    add_config_arguments(parser, ClassifierConfig, str(ROOT / "configs" / "classifier.yaml"))
    with pytest.raises(ConfigError, match="'training.batch_size'"):
        config_from_args(parser.parse_args(["--training.batch_size", "big"]), ClassifierConfig)


def test_script_reports_a_bad_key_in_one_line(tmp_path: Path) -> None:
    bad = write(tmp_path, "training:\n  epochz: 3\n")
    run = subprocess.run(
        [sys.executable, str(ROOT / "train_classifier.py"), "--config", str(bad)],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        f"error: unknown config key 'training.epochz' (valid keys here: {', '.join(sorted(ClassifierConfig().training.__dataclass_fields__))})"
    ]


@pytest.mark.parametrize("cls, path, data_mix", [
    (ClassifierConfig, "configs/classifier.yaml",
     {"real.repeat", "augment.break_prob", "augment.aspect_max", "augment.elastic_px", "augment.styled",
      "augment.reshaped"}),
    (VAEConfig, "configs/vae.yaml", set()),
    (LineReaderConfig, "configs/line_reader.yaml", set()),
])
def test_the_shipped_yaml_is_the_code_defaults_but_the_data_mix(cls, path: str, data_mix: set[str]) -> None:
    """A value read from the code is the shipped one, except the extra training data and augmentation, which
    the code leaves off (small runs in tests and sanity checks stay plain MNIST)."""
    def flat(tree: dict, prefix: str = "") -> dict:
        return {k: v for key, value in tree.items()
                for k, v in (flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {prefix + key: value}).items()}

    shipped, code = flat(to_dict(load_config(cls, ROOT / path))), flat(to_dict(cls()))
    assert {key for key in shipped if shipped[key] != code[key]} == data_mix
