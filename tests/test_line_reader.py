"""The CTC line reader: its input, lines drawn for it, a few real training steps (the loss falls, one seed
gives one run, resume and a drawing process change nothing), its checkpoint and the shipped model."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from digit_studio.checkpoint import read_checkpoint, save_checkpoint
from digit_studio.config import DataConfig, LineReaderConfig, LineSynthConfig, load_config
from digit_studio.errors import CheckpointError
from digit_studio.models.classifier import count_parameters, reading_form
from digit_studio.models.line_reader import (
    ALPHABET,
    MAX_WIDTH,
    PAD,
    LineReader,
    batch_images,
    level,
    line_image,
    line_log_probs,
    load_line_reader,
)
from digit_studio.reading.ctc import greedy_decode
from digit_studio.training.data import Split
from digit_studio.training.line_reader import (
    LineStream,
    draw_pool,
    edit_distance,
    fixed_lines,
    score_lines,
    train_line_reader,
)
from digit_studio.training.lines import DigitPool, draw_lines, random_text
from digit_studio.training.loop import resume_path
from digit_studio.training.synth import Style, draw_number, pick_digits

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "checkpoints" / "line_reader.safetensors"


def small_config(tmp_path: Path, **training: int) -> LineReaderConfig:
    config = LineReaderConfig(device="cpu", data=DataConfig(download=False, val_size=1000, train_limit=3000))
    config.lines.symbols = [1, 6]
    config.lines.real_share = 0.0
    config.training.epochs = 2
    config.training.lines_per_epoch = 64
    config.training.batch_size = 16
    config.training.pool_batches = 2
    config.training.workers = 0
    for key, value in training.items():
        setattr(config.training, key, value)
    config.evaluation.val_lines = 24
    config.evaluation.test_lines_per_count = 2
    config.output.checkpoint = str(tmp_path / "line_reader.safetensors")
    config.output.results_dir = str(tmp_path / "results")
    return config


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, LineReaderConfig]:
    config = small_config(tmp_path_factory.mktemp("reference"))
    return train_line_reader(config), config


@pytest.fixture(scope="module")
def small_pool(data_config: DataConfig) -> DigitPool:
    from digit_studio.training.data import load_mnist

    test = load_mnist(data_config, train=False)
    return DigitPool(Split(test.images[:2000], test.labels[:2000]))


# --- the model's input


def test_line_image_fills_the_height_and_maps_back_to_the_mask() -> None:
    mask = np.zeros((300, 900), bool)
    mask[100:200, 300:350] = True  # ink 100 px tall, 50 wide, from x = 300
    mask[120:180, 500:520] = True
    line = line_image(mask, height=32)
    image = line.image
    assert image.shape[0] == 32 and image.shape[1] % 4 == 0
    rows = torch.nonzero(image.amax(1) > 0.5).flatten()
    assert rows.min() == PAD and rows.max() == 32 - PAD - 1
    cols = torch.nonzero(image.amax(0) > 0.5).flatten()
    assert line.to_mask_x(float(cols.min())) == pytest.approx(300, abs=2)
    assert line.to_mask_x(float(cols.max()) + 1) == pytest.approx(520, abs=2)


def test_a_sloping_line_is_levelled_and_a_lone_symbol_is_not() -> None:
    mask = np.zeros((400, 1200), bool)
    for k in range(8):  # eight blocks 80 px tall climbing 30 px each: a sloping baseline
        x, y = 100 + 130 * k, 300 - 30 * k
        mask[y - 80 : y, x : x + 60] = True
    levelled = level(mask)
    assert levelled.shape[0] < 100 and levelled.sum() == mask.sum()
    assert np.array_equal(levelled.any(0), mask.any(0))  # columns move up or down only: x is kept
    assert line_image(mask).scale == pytest.approx(28 / levelled.shape[0], rel=0.01)
    slanted_one = np.zeros((200, 200), bool)
    for y in range(20, 180):
        slanted_one[y, 140 - y // 2 : 150 - y // 2] = True
    assert level(slanted_one) is slanted_one


def test_line_image_edge_cases() -> None:
    assert line_image(np.zeros((50, 50), bool)).image.abs().sum() == 0
    long_stroke = np.zeros((5, 20000), bool)
    long_stroke[2, :] = True
    assert line_image(long_stroke).image.shape[1] <= MAX_WIDTH


def test_model_size_and_frames() -> None:
    model = LineReader(LineReaderConfig().model)
    assert count_parameters(model) <= 400_000
    x, widths = batch_images([torch.rand(32, 64), torch.rand(32, 120)])
    log_probs, frames = model.eval()(x, widths)
    assert log_probs.shape == (2, 60, len(ALPHABET) + 1) and frames.tolist() == [32, 60]
    assert model.stride == 2.0
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(2, 60), atol=1e-5)


def test_a_line_reads_the_same_alone_and_in_a_padded_batch() -> None:
    torch.manual_seed(0)
    model = LineReader(LineReaderConfig().model).eval()
    images = [torch.rand(32, 48), torch.rand(32, 200), torch.rand(32, 8)]
    together = line_log_probs(model, images)
    for image, lp in zip(images, together):
        assert torch.allclose(line_log_probs(model, [image])[0], lp, atol=1e-5)


# --- lines drawn for training


def test_lines_are_reproducible(small_pool: DigitPool) -> None:
    config = LineSynthConfig(symbols=[1, 8])

    def draw(seed: int) -> list:
        return draw_lines(small_pool, [1, 4, 8], torch.Generator().manual_seed(seed), config, 32)

    first, again, other = draw(0), draw(0), draw(1)
    assert [line.text for line in first] == [line.text for line in again]
    assert all(torch.equal(a.image.image, b.image.image) for a, b in zip(first, again))
    assert [line.text for line in first] != [line.text for line in other]
    assert [len(line.text) for line in first] == [1, 4, 8]


def test_texts_are_numbers_with_separators_never_doubled() -> None:
    rng = np.random.default_rng(0)
    config = LineSynthConfig(separator_lines=1.0, separator_share=0.5)
    texts = [random_text(12, rng, config) for _ in range(200)]
    assert all(len(t) == 12 and set(t) <= set(ALPHABET) for t in texts)
    assert all("--" not in t and ".." not in t and "-." not in t and ".-" not in t for t in texts)
    assert any("-" in t for t in texts) and any("." in t for t in texts)


def test_a_drawn_line_holds_its_label(small_pool: DigitPool) -> None:
    """Spaced lines, nothing leaning or touching: every symbol is its own run of inked columns, the digits
    picked are of the label's classes."""
    config = LineSynthConfig(gap=[0.6, 0.8], touching_lines=0.0, broken_lines=0.0, styled_lines=0.0,
                             sloped_lines=0.0, slant_deg=0.0, drift=0.0, jitter=0.0, digit_rotation_deg=0.0,
                             separator_lines=0.0, size_jitter=0.0)
    for line in draw_lines(small_pool, [1, 3, 5, 7], torch.Generator().manual_seed(3), config, 32):
        inked = (line.image.image > 0.2).any(0).numpy()
        runs = int(inked[0]) + int(np.sum(inked[1:] & ~inked[:-1]))
        assert runs == len(line.text), line.text
    rng = np.random.default_rng(0)
    picked = small_pool.pick("90-12", rng)
    labels = small_pool.splits[0].labels
    for image, digit in zip(picked, "9012"):
        same = (small_pool.splits[0].images == image).flatten(1).all(1)
        assert labels[same].eq(int(digit)).all() and same.any()


@pytest.mark.slow
def test_real_handwriting_is_mixed_in_from_the_training_file_only(data_config: DataConfig) -> None:
    train = Split(torch.zeros(10, 28, 28, dtype=torch.uint8), torch.arange(10))
    pool = DigitPool.for_training(train, data_config, LineSynthConfig(real_share=1.0))
    assert len(pool.splits) == 2 and len(pool.splits[1]) == 1934 - 384  # optdigits-orig.tra less its kept-back part
    assert pool.pick("5", np.random.default_rng(0)).float().sum() > 0  # never the blank MNIST stand-ins


def test_scores() -> None:
    assert edit_distance("1234", "1243") == 2 and edit_distance("", "12") == 2 and edit_distance("12", "12") == 0
    from digit_studio.training.lines import Line

    dummy = line_image(np.ones((4, 4), bool))
    lines = [Line(dummy, "12", True), Line(dummy, "345", False)]
    scores = score_lines(lines, ["12", "35"])
    assert scores["overall"] == {"lines": 2, "exact": 0.5, "cer": 0.2}
    assert scores["touching"]["exact"] == 1.0 and scores["symbols_3"]["cer"] == pytest.approx(1 / 3)


# --- training


def test_loss_falls_and_outputs_are_written(reference_run: tuple[dict, LineReaderConfig]) -> None:
    metrics, config = reference_run
    losses = metrics["step_losses"]
    assert len(losses) == 8
    assert sum(losses[-2:]) / 2 < 0.5 * sum(losses[:2]) / 2
    assert metrics["test"]["overall"]["lines"] == 12 and set(metrics["test"]) >= {"symbols_1", "symbols_6"}
    results = Path(config.output.results_dir)
    assert json.loads((results / "metrics.json").read_text())["test"] == metrics["test"]
    assert (results / "test_lines.png").stat().st_size > 0


def test_checkpoint_round_trip(reference_run: tuple[dict, LineReaderConfig], data_config: DataConfig) -> None:
    metrics, config = reference_run
    model, meta = load_line_reader(config.output.checkpoint)
    assert not model.training and meta["kind"] == "line_reader"
    assert meta["metrics"]["test"] == metrics["test"] and meta["model_config"] == meta["train_config"]["model"]
    # The loaded weights read the test lines exactly as the trained model did.
    from digit_studio.training.data import load_mnist

    lines = fixed_lines(DigitPool(load_mnist(data_config, train=False)), config, None, config.evaluation.test_seed)
    readings = [greedy_decode(lp) for lp in line_log_probs(model, [line.image.image for line in lines])]
    assert score_lines(lines, readings) == metrics["test"]


@pytest.mark.slow
def test_same_seed_same_weights(reference_run: tuple[dict, LineReaderConfig], tmp_path: Path) -> None:
    metrics, config = reference_run
    again = train_line_reader(small_config(tmp_path))
    assert again["step_losses"] == metrics["step_losses"]
    first, _ = read_checkpoint(config.output.checkpoint, "line_reader")
    second, _ = read_checkpoint(small_config(tmp_path).output.checkpoint, "line_reader")
    assert all(torch.equal(first[name], second[name]) for name in first)


@pytest.mark.slow
def test_other_seed_other_run(reference_run: tuple[dict, LineReaderConfig], tmp_path: Path) -> None:
    config = small_config(tmp_path)
    config.seed = 1
    assert train_line_reader(config, write_outputs=False)["step_losses"] != reference_run[0]["step_losses"]


@pytest.mark.slow
def test_resume_continues_the_same_run(reference_run: tuple[dict, LineReaderConfig], tmp_path: Path) -> None:
    """Every step's lines come from the seed and the step alone: a run resumed after its first epoch draws
    the lines the uninterrupted run drew."""
    interrupted = train_line_reader(small_config(tmp_path, max_steps=4))
    assert len(interrupted["history"]) == 1
    resumed = train_line_reader(small_config(tmp_path), resume=resume_path(small_config(tmp_path)))
    assert resumed["step_losses"] == reference_run[0]["step_losses"]
    assert resumed["test"] == reference_run[0]["test"]


@pytest.mark.slow
def test_a_drawing_process_draws_the_same_lines(small_pool: DigitPool, tmp_path: Path) -> None:
    """Lines drawn in a second process while the model trains are the lines drawn in turn, whichever pool
    is asked for."""
    config = small_config(tmp_path, workers=1)
    stream = LineStream(small_pool, config)
    try:
        for number in (0, 1, 5):
            drawn = draw_pool(small_pool, config, number)
            streamed = stream.get(number)
            assert [[line.text for line in batch] for batch in streamed] == [[line.text for line in batch]
                                                                              for batch in drawn]
            assert all(torch.equal(a.image.image, b.image.image)
                       for batch_a, batch_b in zip(streamed, drawn) for a, b in zip(batch_a, batch_b))
    finally:
        stream.close()


# --- bad checkpoints


def test_missing_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="line_reader checkpoint not found"):
        load_line_reader(tmp_path / "none.safetensors")


def test_garbage_and_truncated_checkpoints(reference_run: tuple[dict, LineReaderConfig], tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(os.urandom(4096))
    with pytest.raises(CheckpointError, match="not a readable safetensors checkpoint"):
        load_line_reader(garbage)
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(Path(reference_run[1].output.checkpoint).read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="not a readable safetensors checkpoint"):
        load_line_reader(truncated)


def test_wrong_kind_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="is a classifier checkpoint, but a line_reader checkpoint"):
        load_line_reader(ROOT / "checkpoints" / "classifier.safetensors")
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(CheckpointError, match="not a Digit Studio checkpoint"):
        load_line_reader(foreign)


def test_checkpoint_without_usable_config_or_fitting_weights(tmp_path: Path) -> None:
    model = LineReader(LineReaderConfig().model)
    path = tmp_path / "bad.safetensors"
    save_checkpoint(path, model, "line_reader", {})
    with pytest.raises(CheckpointError, match="no usable model config"):
        load_line_reader(path)
    save_checkpoint(path, model, "line_reader", {"model_config": {"hidden": 64}})
    with pytest.raises(CheckpointError, match="does not fit the model"):
        load_line_reader(path)
    save_checkpoint(path, model, "line_reader", {"model_config": {"pools": [[2, 2]]}})
    with pytest.raises(CheckpointError, match="no usable model config"):
        load_line_reader(path)


# --- the script, the config and the shipped model


def test_shipped_config_loads() -> None:
    config = load_config(LineReaderConfig, ROOT / "configs" / "line_reader.yaml")
    assert config.output.checkpoint == "checkpoints/line_reader.safetensors"
    assert count_parameters(LineReader(config.model)) <= 400_000


def test_shipped_model(mnist_test: Split) -> None:
    model, meta = load_line_reader(SHIPPED)
    assert count_parameters(model) == meta["metrics"]["parameters"] <= 400_000
    shipped = json.loads((ROOT / "results" / "line_reader" / "metrics.json").read_text())
    assert meta["metrics"]["test"] == shipped["test"]
    # Numbers drawn on the sketchpad's canvas as the benchmark draws them, read whole.
    rng = np.random.default_rng(0)
    texts = ["".join(map(str, rng.integers(0, 10, rng.integers(1, 11)))) for _ in range(20)]
    images = []
    for i, text in enumerate(texts):
        drawing = draw_number(text, pick_digits(mnist_test, text, rng), rng, Style(touching=i % 2 * 2))
        images.append(line_image(drawing.image[..., 0] < 128).image)
    log_probs = line_log_probs(model, images)
    readings = [greedy_decode(lp) for lp in log_probs]
    assert sum(r == t for r, t in zip(readings, texts)) >= 18, list(zip(texts, readings))

    # Its reading form has no normalisation left, leaves the model as it was, and reads the same.
    fast = reading_form(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    for before, after in zip(log_probs, line_log_probs(fast, images)):
        torch.testing.assert_close(after, before, atol=2e-3, rtol=0)
    again = reading_form(fast)
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), fast.state_dict().values()))
