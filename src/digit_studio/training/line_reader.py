"""Line reader training: CTC on lines drawn on the fly from MNIST training digits (lines.py), through the
shared loop (loop.py); the best epoch reads the most validation lines exactly; reproducible from one seed.

Lines are drawn in pools of `pool_batches` batches, each pool from its own seed (the run's seed and the
pool's number), sorted by width and cut into batches, so a batch carries little padding and a step's
batch depends on nothing but the seed and the step: a resumed run draws the very lines the uninterrupted
one would have. With `workers` = 1 the next pool is drawn in a second process while the model trains on
the current one (drawing a line costs about as much as a training step on it); the process is spawned, so
a script that trains this way needs the usual `if __name__ == "__main__":` guard.
"""

from __future__ import annotations

import multiprocessing
from collections import defaultdict
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from digit_studio.config import LineReaderConfig
from digit_studio.models.classifier import count_parameters
from digit_studio.models.line_reader import CHANNELS_LAST, LineReader, batch_images, encode, line_log_probs
from digit_studio.reading.ctc import align, greedy_decode
from digit_studio.runtime import resolve_device, seed_everything
from digit_studio.training.data import load_mnist, load_splits
from digit_studio.training.lines import DigitPool, Line, draw_lines, random_counts
from digit_studio.training.loop import fit, save_run

Pool = list[list[Line]]  # a pool's batches


def draw_pool(digits: DigitPool, config: LineReaderConfig, number: int) -> Pool:
    """Pool `number`: pool_batches × batch_size lines from the seed (config.seed, number), in batches of
    similar width, the batches in random order."""
    t = config.training
    seed = int(np.random.SeedSequence([config.seed, number]).generate_state(1)[0])
    generator = torch.Generator().manual_seed(seed)
    counts = random_counts(t.pool_batches * t.batch_size, generator, config.lines)
    lines = sorted(draw_lines(digits, counts, generator, config.lines, config.model.height),
                   key=lambda line: line.image.image.shape[1])
    batches = [lines[i : i + t.batch_size] for i in range(0, len(lines), t.batch_size)]
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]


_WORKER: tuple[DigitPool, LineReaderConfig] | None = None


def _start_worker(digits: DigitPool, config: LineReaderConfig) -> None:
    global _WORKER
    torch.set_num_threads(1)  # one core draws, the other trains
    _WORKER = (digits, config)


def _draw_in_worker(number: int) -> Pool:
    assert _WORKER is not None
    return draw_pool(*_WORKER, number)


class LineStream:
    """Pool after pool; with `workers`, the next one is drawn in a spawned process meanwhile."""

    def __init__(self, digits: DigitPool, config: LineReaderConfig) -> None:
        self.digits, self.config = digits, config
        self.executor = None
        self.threads = torch.get_num_threads()
        if config.training.workers:
            self.executor = ProcessPoolExecutor(1, multiprocessing.get_context("spawn"), _start_worker,
                                                (digits, config))
            torch.set_num_threads(max(1, self.threads - 1))  # the worker has a core of its own
        self.pending: dict[int, Future[Pool]] = {}

    def get(self, number: int) -> Pool:
        if self.executor is None:
            return draw_pool(self.digits, self.config, number)
        future = self.pending.pop(number, None) or self.executor.submit(_draw_in_worker, number)
        self.pending = {n: f for n, f in self.pending.items() if n > number}
        if number + 1 not in self.pending:
            self.pending[number + 1] = self.executor.submit(_draw_in_worker, number + 1)
        return future.result()

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=True)
            torch.set_num_threads(self.threads)


def edit_distance(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def read_lines(model: LineReader, lines: list[Line], batch_size: int) -> list[str]:
    return [greedy_decode(lp) for lp in line_log_probs(model, [line.image.image for line in lines], batch_size)]


def score_lines(lines: list[Line], readings: list[str]) -> dict[str, Any]:
    """Exact-match rate and character error rate (edits / true characters), overall, per number of
    symbols, and for lines with and without touching digits."""
    groups: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for line, read in zip(lines, readings):
        for key in ("overall", f"symbols_{len(line.text)}", "touching" if line.touching else "not_touching"):
            groups[key].append((line.text, read))

    def figures(pairs: list[tuple[str, str]]) -> dict[str, Any]:
        return {"lines": len(pairs), "exact": sum(t == r for t, r in pairs) / len(pairs),
                "cer": sum(edit_distance(t, r) for t, r in pairs) / max(sum(len(t) for t, _ in pairs), 1)}

    by_count = sorted((k for k in groups if k.startswith("symbols_")), key=lambda k: int(k.split("_")[1]))
    return {key: figures(groups[key]) for key in ["overall", "touching", "not_touching", *by_count] if key in groups}


@dataclass
class LineTask:
    """CTC on lines drawn afresh each step; the best epoch reads the most validation lines exactly."""

    stream: LineStream
    config: LineReaderConfig
    device: torch.device
    val: list[Line]

    def __post_init__(self) -> None:
        self._pool: tuple[int, Pool] | None = None

    @property
    def size(self) -> int:
        """A whole number of pools per epoch: every epoch starts a fresh pool, as a resumed run does."""
        t = self.config.training
        pool = t.pool_batches * t.batch_size
        return max(1, round(t.lines_per_epoch / pool)) * pool

    def step(self, model: nn.Module, index: torch.Tensor, generator: torch.Generator,
             step: int) -> tuple[torch.Tensor, dict[str, float]]:
        number, k = divmod(step, self.config.training.pool_batches)
        if self._pool is None or self._pool[0] != number:
            self._pool = (number, self.stream.get(number))
        lines = self._pool[1][k]
        images, widths = batch_images([line.image.image for line in lines])
        log_probs, frames = model(images.to(self.device), widths)
        targets = torch.tensor([c for line in lines for c in encode(line.text)], dtype=torch.long)
        lengths = torch.tensor([len(line.text) for line in lines])
        # zero_infinity: a line too narrow for its symbols (CTC needs a frame per symbol and a blank
        # between repeats) adds nothing instead of an infinite loss.
        loss = F.ctc_loss(log_probs.transpose(0, 1), targets, frames, lengths, zero_infinity=True)
        with torch.no_grad():
            exact = np.mean([greedy_decode(lp[:t]) == line.text
                             for lp, t, line in zip(log_probs.detach().cpu(), frames.tolist(), lines)])
        return loss, {"exact": float(exact)}

    def evaluate(self, model: nn.Module, epoch: int) -> tuple[float, dict[str, Any]]:
        scores = score_lines(self.val, read_lines(model, self.val, self.config.evaluation.batch_size))["overall"]
        return scores["exact"], {"val_exact": scores["exact"], "val_cer": scores["cer"]}


def fixed_lines(digits: DigitPool, config: LineReaderConfig, count: int | None, seed: int) -> list[Line]:
    """A fixed set of lines from its own seed: `count` of random lengths, or (count None) test_lines_per_count
    of every length."""
    generator = torch.Generator().manual_seed(seed)
    low, high = config.lines.symbols
    per = config.evaluation.test_lines_per_count
    counts = random_counts(count, generator, config.lines) if count else [n for n in range(low, high + 1)
                                                                            for _ in range(per)]
    return draw_lines(digits, counts, generator, config.lines, config.model.height)


def plot_test_lines(lines: list[Line], log_probs: list[torch.Tensor], stride: float, path: Path,
                    per_count: int = 2) -> None:
    """The first `per_count` test lines of every length as the model saw them, each with its reading (red
    where wrong), every read symbol written under the frame where its probability peaks, and dotted lines
    where the alignment would cut the line between symbols."""
    import matplotlib

    matplotlib.use("Agg")  # scripts have no display
    import matplotlib.pyplot as plt

    shown = [i for n in sorted({len(line.text) for line in lines})
             for i in [j for j, line in enumerate(lines) if len(line.text) == n][:per_count]]
    columns = 2
    rows = (len(shown) + columns - 1) // columns
    width = max(lines[i].image.image.shape[1] for i in shown)
    fig, axes = plt.subplots(rows, columns, figsize=(14, 1.05 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.T.flat, shown):
        image = lines[i].image.image.numpy()
        ax.imshow(1 - image, cmap="gray", vmin=0, vmax=1, extent=(0, image.shape[1], image.shape[0], 0))
        ax.set_xlim(0, width)
        ax.set_ylim(image.shape[0] + 12, 0)
        symbols = align(log_probs[i], stride)
        reading = "".join(s.label for s in symbols)
        ax.text(0, -2, f"{lines[i].text} → {reading or '(nothing)'}", fontsize=8,
                color="black" if reading == lines[i].text else "red")
        for s in symbols:
            ax.text((s.peak + 0.5) * stride, image.shape[0] + 10, s.label, fontsize=7, ha="center", color="C0")
        for s in symbols[1:]:
            ax.axvline(s.span_x[0], color="C1", lw=0.6, ls=":")
    fig.subplots_adjust(hspace=0.35, wspace=0.05)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def train_line_reader(config: LineReaderConfig, resume: str | Path | None = None,
                      write_outputs: bool = True) -> dict[str, Any]:
    """Train, keep the best-validation weights, read the test lines and write the checkpoint, metrics and a
    picture of test lines with their readings. Returns the metrics dict."""
    generator = seed_everything(config.seed)
    device = resolve_device(config.device)
    train, val = load_splits(config.data)
    val_lines = fixed_lines(DigitPool(val), config, config.evaluation.val_lines, config.evaluation.val_seed)
    model = LineReader(config.model).to(device, memory_format=CHANNELS_LAST)
    stream = LineStream(DigitPool.for_training(train, config.data, config.lines), config)
    threads = torch.get_num_threads()  # the model's, while a worker draws lines
    try:
        run = fit(model, LineTask(stream, config, device, val_lines), config, generator, resume,
                  write_resume=write_outputs)
    finally:
        stream.close()
    test_lines = fixed_lines(DigitPool(load_mnist(config.data, train=False)), config, None,
                             config.evaluation.test_seed)
    log_probs = line_log_probs(model, [line.image.image for line in test_lines], config.evaluation.batch_size)
    readings = [greedy_decode(lp) for lp in log_probs]
    metrics: dict[str, Any] = {
        "val_exact": run.best.get("val_exact"),
        "val_cer": run.best.get("val_cer"),
        "best_epoch": run.best_epoch,
        "test": score_lines(test_lines, readings),
        "parameters": count_parameters(model),
        "train_seconds": round(run.train_seconds, 1),
        "lines_seen": len(run.step_losses) * config.training.batch_size,
        "device": str(device),
        "checkpoint": config.output.checkpoint,
        "torch_threads": threads,
        "drawing_workers": config.training.workers,
        "history": run.history,
    }
    if write_outputs:
        results = save_run(config, model, "line_reader", metrics)
        plot_test_lines(test_lines, log_probs, model.stride, results / "test_lines.png")
    metrics["step_losses"] = run.step_losses
    return metrics
