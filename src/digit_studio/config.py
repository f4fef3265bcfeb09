"""Typed configuration: YAML files loaded into dataclasses, with dotted command-line overrides.

Every config is a tree of dataclasses. Unknown keys and wrong types are rejected with a message that
names the offending key, so a typo in a YAML file or on the command line never silently does nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from digit_studio.errors import ConfigError

T = TypeVar("T")


# --------------------------------------------------------------------------------------------------
# Schemas


@dataclass
class DataConfig:
    root: str = "data"  # overridden by $DIGIT_STUDIO_DATA
    download: bool = True
    val_size: int = 5000
    split_seed: int = 0
    train_limit: int = 0  # use only this many training images (0 = all); for smoke runs and tests


@dataclass
class AugmentConfig:
    """Random distortions that make MNIST scans look like digits drawn with a mouse or a finger."""

    rotation_deg: float = 12.0
    translate_px: float = 2.5
    scale_min: float = 0.85
    scale_max: float = 1.1
    shear_deg: float = 10.0
    thicken_prob: float = 0.25  # stroke-thickness jitter: dilate (thick brush) ...
    thin_prob: float = 0.15  # ... or erode (thin pen)
    break_prob: float = 0.0  # pen lifted mid-digit: a band cut through the stroke (a 5's loose bar, a broken loop)
    break_min_px: float = 1.0  # the band's width, in 28×28 pixels
    break_max_px: float = 2.5
    aspect_max: float = 1.0  # widen or narrow by up to this factor (wide and narrow writing; 1 = never)
    elastic_px: float = 0.0  # smooth random warp of up to this many pixels (the wobble of a fast hand)
    styled: int = 0  # digits of the classes with styles (styles.py) copied once per run in one of them
    reshaped: int = 0  # digits copied once per run with their box stretched (square or another aspect)
    touching: int = 0  # digits copied once per run as cut out of a pair drawn touching (touching.py)


@dataclass
class RealDataConfig:
    """Real handwriting mixed into training (realdigits.py): a file that may be trained on, how many of its
    digits are kept back to validate on (never trained on), and how many times each other digit is seen
    per epoch."""

    file: str = "optdigits-orig.tra"
    repeat: int = 0  # 0 = MNIST only
    val_size: int = 384


@dataclass
class ClassifierModelConfig:
    # Conv widths per stage; 2×2 max pooling between stages (28 → 14 → 7).
    stages: list[list[int]] = field(default_factory=lambda: [[16], [32, 48], [64, 88]])
    dropout: float = 0.1


@dataclass
class ClassifierTrainingConfig:
    epochs: int = 10
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 5e-4
    label_smoothing: float = 0.05
    schedule: str = "onecycle"  # onecycle | cosine
    eval_batch_size: int = 1000
    max_steps: int = 0  # stop after this many optimiser steps (0 = no limit); for smoke runs


@dataclass
class OutputConfig:
    checkpoint: str = "checkpoints/classifier.safetensors"
    results_dir: str = "results/classifier"


@dataclass
class ClassifierConfig:
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | mps
    data: DataConfig = field(default_factory=DataConfig)
    real: RealDataConfig = field(default_factory=RealDataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ClassifierModelConfig = field(default_factory=ClassifierModelConfig)
    training: ClassifierTrainingConfig = field(default_factory=ClassifierTrainingConfig)
    output: OutputConfig = field(default_factory=OutputConfig)


# --------------------------------------------------------------------------------------------------
# Loading and validation


def _check_type(value: Any, annotation: Any, key: str) -> Any:
    """Return `value` converted to `annotation`, or raise ConfigError naming `key`."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(annotation):
            try:
                return _check_type(value, option, key)
            except ConfigError:
                continue
        raise ConfigError(f"config key '{key}': expected {annotation}, got {value!r}")
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"config key '{key}': expected a list, got {value!r}")
        (item_type,) = typing.get_args(annotation)
        return [_check_type(v, item_type, f"{key}[{i}]") for i, v in enumerate(value)]
    if annotation is type(None):
        if value is not None:
            raise ConfigError(f"config key '{key}': expected null, got {value!r}")
        return None
    if dataclasses.is_dataclass(annotation):
        return from_dict(annotation, value, prefix=f"{key}.")
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)  # YAML writes 1 for 1.0
    if annotation is bool and not isinstance(value, bool):
        raise ConfigError(f"config key '{key}': expected true or false, got {value!r}")
    if annotation in (int, float) and isinstance(value, bool):
        raise ConfigError(f"config key '{key}': expected {annotation.__name__}, got {value!r}")
    if not isinstance(value, annotation):
        raise ConfigError(
            f"config key '{key}': expected {annotation.__name__}, got {type(value).__name__} {value!r}"
        )
    return value


def from_dict(cls: type[T], data: Any, prefix: str = "") -> T:
    """Build dataclass `cls` from a nested dict, rejecting unknown keys and wrong types."""
    if not isinstance(data, dict):
        where = f"section '{prefix.rstrip('.')}'" if prefix else "config"
        raise ConfigError(f"{where}: expected a mapping of keys, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"unknown config key '{prefix}{unknown[0]}' (valid keys here: {', '.join(sorted(names))})"
        )
    kwargs = {name: _check_type(value, hints[name], prefix + name) for name, value in data.items()}
    return cls(**kwargs)


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def _flat_fields(cls: type, prefix: str = "") -> dict[str, Any]:
    """Map every leaf key ('training.lr') to its type annotation."""
    out: dict[str, Any] = {}
    for name, annotation in typing.get_type_hints(cls).items():
        if dataclasses.is_dataclass(annotation):
            out.update(_flat_fields(annotation, f"{prefix}{name}."))
        else:
            out[prefix + name] = annotation
    return out


def apply_overrides(data: dict[str, Any], overrides: dict[str, str]) -> dict[str, Any]:
    """Set dotted keys (values written as YAML: '3e-4', '[16, 32]', 'true') in a nested dict."""
    for dotted, text in overrides.items():
        node = data
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"config key '{dotted}': '{part}' is not a section")
        node[leaf] = yaml.safe_load(text)
    return data


def load_config(cls: type[T], path: str | Path | None, overrides: dict[str, str] | None = None) -> T:
    """Load `path` (YAML) into `cls`, then apply dotted overrides. A missing path means defaults."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"config file {path}: expected a mapping of keys at the top level")
    return from_dict(cls, apply_overrides(data, overrides or {}))


def add_config_arguments(parser: argparse.ArgumentParser, cls: type, default_path: str | None,
                         only: tuple[str, ...] | None = None) -> None:
    """Add --config and one --section.key option per config value, generated from the schema; with `only`,
    just the values under those sections or keys (a script that uses part of a config offers that part)."""
    parser.add_argument("--config", default=default_path, help="YAML config file (default: %(default)s)")
    group = parser.add_argument_group("config overrides (values of the YAML file)")
    defaults = to_dict(cls())
    for dotted, annotation in _flat_fields(cls).items():
        if only is not None and not any(dotted == key or dotted.startswith(f"{key}.") for key in only):
            continue
        default: Any = defaults
        for part in dotted.split("."):
            default = default[part]
        name = getattr(annotation, "__name__", str(annotation))
        group.add_argument(
            f"--{dotted}", dest=f"override:{dotted}", metavar=name.upper(), default=None,
            help=f"(default in code: {default})",
        )


def config_from_args(args: argparse.Namespace, cls: type[T]) -> T:
    overrides = {
        key.removeprefix("override:"): value
        for key, value in vars(args).items()
        if key.startswith("override:") and value is not None
    }
    return load_config(cls, args.config, overrides)


# --------------------------------------------------------------------------------------------------
# VAE schemas (train_vae.py, configs/vae.yaml): same conventions as the classifier's above.


@dataclass
class VAEModelConfig:
    latent_dim: int = 16
    # Widths of the two stride-2 stages (28 → 14 → 7); the decoder mirrors them with transposed convs.
    channels: list[int] = field(default_factory=lambda: [32, 32])
    # Fully connected layer between the 7×7 features and the latent (0 = none): the cheapest capacity
    # on a CPU, worth ~6 nats of ELBO over none at equal training time.
    hidden: int = 256
    head_channels: int = 0  # 3×3 conv layer at 28×28 before the output logits (0 = none)


@dataclass
class VAETrainingConfig:
    epochs: int = 24  # ~9 minutes on 2 quiet CPU cores
    batch_size: int = 64
    lr: float = 4e-3
    weight_decay: float = 0.0
    beta: float = 1.0  # weight of the KL term (1 = the true ELBO)
    kl_warmup_epochs: float = 1.0  # KL weight ramps linearly from 0 to beta over this many epochs
    schedule: str = "onecycle"  # onecycle | cosine
    eval_batch_size: int = 1000
    sample_every: int = 4  # write sample grids to output.samples_dir every this many epochs
    max_steps: int = 0  # stop after this many optimiser steps (0 = no limit); for smoke runs


@dataclass
class VAEEvaluationConfig:
    """Test-set figures: digits binarized once by Bernoulli sampling of their grey levels (fixed seed)."""

    binarize_seed: int = 0
    elbo_samples: int = 10  # latent samples per test digit for the negative ELBO
    iw_samples: int = 1000  # importance samples per digit for the log-likelihood estimate
    iw_digits: int = 1000  # first this many test digits get the (expensive) importance-weighted estimate


@dataclass
class VAEOutputConfig(OutputConfig):
    checkpoint: str = "checkpoints/vae.safetensors"
    results_dir: str = "results/vae"
    samples_dir: str = "results/vae_samples"


@dataclass
class VAEConfig:
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | mps
    data: DataConfig = field(default_factory=DataConfig)
    model: VAEModelConfig = field(default_factory=VAEModelConfig)
    training: VAETrainingConfig = field(default_factory=VAETrainingConfig)
    evaluation: VAEEvaluationConfig = field(default_factory=VAEEvaluationConfig)
    output: VAEOutputConfig = field(default_factory=VAEOutputConfig)


# --------------------------------------------------------------------------------------------------
# Line reader schemas (train_line_reader.py, configs/line_reader.yaml): a CTC model that reads a whole line
# of ink without cutting it into symbols. Same conventions as above; ranges are [low, high] lists.


@dataclass
class LineReaderModelConfig:
    height: int = 32  # line images are normalised to this height (the ink's box fills it but for 2 px)
    # Conv widths per stage; after stage i, max pooling by pools[i] = [height, width].
    stages: list[list[int]] = field(default_factory=lambda: [[16], [32], [64, 64], [96]])
    pools: list[list[int]] = field(default_factory=lambda: [[2, 2], [2, 2], [2, 1], [2, 1]])
    hidden: int = 128  # bidirectional GRU units per direction
    # CTC frames per feature column: 2 makes room for the blank that repeated narrow symbols ("11") need.
    frames_per_column: int = 2
    dropout: float = 0.1


@dataclass
class LineSynthConfig:
    """Lines drawn on the fly the way the sketchpad draws (training/lines.py, training/synth.py's drawing)."""

    symbols: list[int] = field(default_factory=lambda: [1, 12])  # symbols per line, uniform
    separator_lines: float = 0.3  # share of lines holding dashes or dots
    separator_share: float = 0.15  # ... where each symbol is one with this probability
    digit_height: list[float] = field(default_factory=lambda: [36.0, 72.0])  # px drawn, before normalising
    size_jitter: float = 0.15  # each digit's height changes by up to this share (the most of a line's range)
    brush: list[float] = field(default_factory=lambda: [0.06, 0.2])  # brush width / digit height
    gap: list[float] = field(default_factory=lambda: [0.0, 0.8])  # space between symbols / digit height
    touching_lines: float = 0.5  # share of lines with touching (or slightly overlapping) digit pairs
    overlap: list[float] = field(default_factory=lambda: [0.0, 0.1])  # how far such a pair overlaps
    broken_lines: float = 0.2  # share of lines with a digit drawn in two strokes
    styled_lines: float = 0.2  # share of lines whose digits of the classes with styles are drawn in one
    sloped_lines: float = 0.4  # share of lines on a sloping baseline ...
    slope_deg: list[float] = field(default_factory=lambda: [0.0, 15.0])  # ... of this slope, either way
    slant_deg: float = 20.0  # the whole line leans by up to this much either way
    drift: float = 0.1  # smooth baseline wave: amplitude up to this share of the digit height
    jitter: float = 0.08  # each symbol's random vertical offset / digit height (the most of a line's range)
    digit_rotation_deg: float = 8.0  # each digit turned and sheared on its own, by up to this much
    real_share: float = 0.1  # digits taken from real handwriting (real_file, training digits only)
    real_file: str = "optdigits-orig.tra"


@dataclass
class LineReaderTrainingConfig:
    epochs: int = 10
    lines_per_epoch: int = 12800  # lines drawn afresh each epoch
    batch_size: int = 16
    pool_batches: int = 16  # lines are drawn this many batches at a time and batched by width (less padding)
    workers: int = 1  # 1: the next lines are drawn in a second process while the model trains; 0: in turn
    lr: float = 3e-3
    weight_decay: float = 1e-4
    schedule: str = "onecycle"  # onecycle | cosine
    max_steps: int = 0  # stop after this many optimiser steps (0 = no limit); for smoke runs


@dataclass
class LineReaderEvaluationConfig:
    """Fixed line sets, drawn once from their own seeds: validation from the held-back MNIST training digits
    (selects the best epoch), test from MNIST test digits (the reported figures)."""

    val_lines: int = 600
    val_seed: int = 1
    test_lines_per_count: int = 200  # test lines of each symbol count (1 to symbols' high end)
    test_seed: int = 2
    batch_size: int = 200


@dataclass
class LineReaderOutputConfig(OutputConfig):
    checkpoint: str = "checkpoints/line_reader.safetensors"
    results_dir: str = "results/line_reader"


@dataclass
class LineReaderConfig:
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | mps
    data: DataConfig = field(default_factory=DataConfig)
    lines: LineSynthConfig = field(default_factory=LineSynthConfig)
    model: LineReaderModelConfig = field(default_factory=LineReaderModelConfig)
    training: LineReaderTrainingConfig = field(default_factory=LineReaderTrainingConfig)
    evaluation: LineReaderEvaluationConfig = field(default_factory=LineReaderEvaluationConfig)
    output: LineReaderOutputConfig = field(default_factory=LineReaderOutputConfig)
