"""Choose the two-reader rule (reading/two_readers.py) on training data only.

    flock /tmp/digit_cpu.lock python bench/tune_two_readers.py [--per-category 300] [--real 800] [--digits held-out]
        [--touching-margin-only]

The tuning set is bench/tune_segmentation.py's: drawings of MNIST **training** digits in every category of
bench/multidigit.py, and single digits of the trainable real handwriting (optdigits-orig.tra) as written and
stretched. `--digits held-out` draws only the digits both models' training kept back for validation (5,000
MNIST training digits, the real file's last 384), which the readers read as they read digits they never saw
(on digits they were trained on both are surer and right more often than on a user's); the rule it chose
(results/bench/tune_two_readers_held_out.json) read the test drawings worse than the shipped one (README).
Every drawing is read with the line model, its rule set so that the cuts always stand but the log-odds are
recorded for every line where the readers differ, once for each pair of weights that change what the placed
reading reads (the classifier's weight in the placed reading's digits, and its weight on pieces cut out of
touching ink); then every rule on the grid (those weights, the classifier's weight in the rule, the margins)
is scored by the exact rate it would give, averaged over the sets; of rules that score alike, the one whose
weakest set reads best is taken. Then, the rest fixed, the margin for lines where every piece the readings
differ on touches a neighbour's ink (of equals, the one nearest the margin); `--touching-margin-only` keeps the
shipped rule's other numbers and chooses only that one. Also reported: what the best possible choice between
the two readings of every line would read, the rule's ceiling.
Prints the best rules and writes results/bench/tune_two_readers.json; TwoReaderRule's defaults are what it
chose from all training digits, but for the touching margin: every value from 1.5 to 3 reads those alike, and
of them the held-back digits read best with 1.5 (`--digits held-out --touching-margin-only`,
results/bench/tune_two_readers_touching_margin.json).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm
from tune_segmentation import tuning_set  # sibling benchmarks: python puts bench/ on the path

from digit_studio import cli, resources
from digit_studio.cli import run_script
from digit_studio.reading.reader import DEFAULT_CLASSIFIER, DEFAULT_VAE, Reader, Reading
from digit_studio.reading.two_readers import LINE, TwoReaderRule

# The classifier's weight when a placed digit is read by both models, and its weight on pieces cut out of
# touching ink (in those digits and in the rule). An earlier grid of fuse weights 0, 0.25, 0.5 and 1 (the
# touching weight 1) chose 1.
FUSE_WEIGHTS = ((1.0, 1.0), (1.0, 0.5), (1.0, 0.0), (0.5, 0.0), (0.25, 0.0))
WEIGHTS = (0.0, 0.25, 0.5, 1.0, 1.5)
MARGINS = tuple(float(m) for m in np.arange(-2.0, 8.01, 0.5))
LONE_MARGINS = (*MARGINS[::2], 10.0, 15.0, 20.0, 100.0)  # 100: never
TOUCHING_MARGINS = MARGINS  # chosen second, the other numbers fixed at the grid's best


def lines_of(reading: Reading, truth: str) -> list[tuple[bool, bool, float, float, float, int, int, bool]] | None:
    """Per line: (the cuts read it right, the line model did, line odds, classifier odds, weighed odds, how
    many symbols the cuts read, how many the placed reading has, whether every piece they differ on touches
    a neighbour's ink); None where the lines themselves were found wrongly (no rule can mend that)."""
    truths = truth.split("\n")
    cut_lines = reading.text.split("\n") if reading.text else []  # the cuts' reading: the rule never lets the line win
    if len(cut_lines) != len(truths) or len(reading.lines) != len(truths):
        return None
    out = []
    for cuts, line, right in zip(cut_lines, reading.lines, truths):
        if line is None or line.placed == cuts:
            out.append((cuts == right, cuts == right, 0.0, 0.0, 0.0, len(cuts), len(cuts), False))
        else:
            out.append((cuts == right, line.placed == right, line.line_odds, line.classifier_odds, line.weighed_odds,
                        len(cuts), len(line.placed), line.touching_only))
    return out


def exact(records: list, rule: TwoReaderRule) -> float:
    right = 0
    for lines in records:
        if lines is None:
            continue
        right += all(line_ok if rule.line_wins(*odds_and_counts) else cuts_ok
                     for cuts_ok, line_ok, *odds_and_counts in lines)
    return right / len(records)


def either_right(records: list) -> float:
    """The share read right by the best possible choice between the two readings of every line: the rule's
    ceiling."""
    return sum(lines is not None and all(cuts_ok or line_ok for cuts_ok, line_ok, *_ in lines)
               for lines in records) / len(records)


def main() -> None:
    parser = cli.parser(__doc__)
    parser.add_argument("--per-category", type=int, default=300)
    parser.add_argument("--real", type=int, default=800,
                        help="real training digits, each also stretched (held out: at most the 384 kept back)")
    parser.add_argument("--digits", choices=("train", "held-out"), default="train",
                        help="draw from all MNIST training digits (default), or only those no model trained on")
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--classifier", default=DEFAULT_CLASSIFIER)
    parser.add_argument("--vae", default=DEFAULT_VAE)
    parser.add_argument("--line-reader", default=str(resources.LINE_READER))
    parser.add_argument("--touching-margin-only", action="store_true",
                        help="keep the shipped rule's other numbers (TwoReaderRule's defaults); "
                             "choose the touching margin")
    parser.add_argument("--out", default="results/bench/tune_two_readers.json")
    args = parser.parse_args()
    shipped = TwoReaderRule()
    fuse_weights, weights, margins, lone_margins = (
        (((shipped.fuse_weight, shipped.touching_weight),), (shipped.classifier_weight,), (shipped.margin,),
         (shipped.lone_margin,)) if args.touching_margin_only else (FUSE_WEIGHTS, WEIGHTS, MARGINS, LONE_MARGINS))
    started = time.perf_counter()
    reader = Reader.from_checkpoint(args.classifier, args.vae, line_reader=args.line_reader)
    sets = tuning_set(args.per_category, args.real, args.seed, held_out=args.digits == "held-out")
    grid, records_of = [], {}
    for fuse, touching in fuse_weights:  # the placed reading's digits depend on them: read again for each
        # The cuts stand; both odds are recorded.
        reader.rule = TwoReaderRule(margin=math.inf, touching_margin=math.inf, lone_margin=math.inf,
                                    fuse_weight=fuse, touching_weight=touching)
        records_of[fuse, touching] = {
            name: [lines_of(reader.read(image), text) for image, text in tqdm(items, desc=name)]
            for name, items in sets.items()}
        for weight in weights:
            for margin in margins:
                for lone_margin in lone_margins:
                    rule = TwoReaderRule(classifier_weight=weight, margin=margin, touching_margin=margin,
                                         lone_margin=lone_margin, touching_weight=touching)
                    rates = {name: exact(r, rule) for name, r in records_of[fuse, touching].items()}
                    grid.append({"fuse_weight": fuse, "touching_weight": touching,
                                 "classifier_weight": weight, "margin": margin,
                                 "lone_margin": lone_margin, **rates,
                                 "objective": float(np.mean(list(rates.values())))})
    # Of rules with equal objectives (to 1e-9: the same rates summed in another order differ in the last
    # digit), the one whose weakest set reads best; then the first on the grid (the sort is stable).
    grid.sort(key=lambda g: (-round(g["objective"], 9), -min(g[name] for name in sets)))
    best = grid[0]
    records = records_of[best["fuse_weight"], best["touching_weight"]]
    # Then the margin where every piece the readings differ on touches a neighbour's ink, the rest as chosen;
    # of equals, the one nearest the margin.
    touching_grid = []
    for touching_margin in TOUCHING_MARGINS:
        rule = TwoReaderRule(classifier_weight=best["classifier_weight"], margin=best["margin"],
                             touching_margin=touching_margin, lone_margin=best["lone_margin"],
                             touching_weight=best["touching_weight"])
        rates = {name: exact(r, rule) for name, r in records.items()}
        touching_grid.append({"touching_margin": touching_margin, **rates,
                              "objective": float(np.mean(list(rates.values())))})
    touching_grid.sort(key=lambda g: (-round(g["objective"], 9), abs(g["touching_margin"] - best["margin"])))
    best = {**best, **touching_grid[0]}
    chosen = TwoReaderRule(classifier_weight=best["classifier_weight"], margin=best["margin"],
                           touching_margin=best["touching_margin"], lone_margin=best["lone_margin"],
                           touching_weight=best["touching_weight"])
    never = TwoReaderRule(margin=math.inf, touching_margin=math.inf, lone_margin=math.inf)
    cuts_alone = {name: exact(r, never) for name, r in records.items()}
    anywhere = TwoReaderRule(classifier_weight=0.0, margin=-math.inf, touching_margin=-math.inf,
                             lone_margin=-math.inf, lone_most=TwoReaderRule.most_symbols)
    line_alone = {name: exact(r, anywhere) for name, r in records.items()}
    either = {name: either_right(r) for name, r in records.items()}
    print("cuts alone:", {k: round(v, 4) for k, v in cuts_alone.items()})
    print("either reader right (the rule's ceiling):", {k: round(v, 4) for k, v in either.items()})
    print("line model wherever they differ:", {k: round(v, 4) for k, v in line_alone.items()})
    for g in grid[:8]:
        print({k: round(v, 4) for k, v in g.items()})
    print("touching margin, the rest as the best:")
    for g in sorted(touching_grid, key=lambda g: g["touching_margin"]):
        print({k: round(v, 4) for k, v in g.items()})
    disagreements = sum(1 for r in records.values() for lines in r if lines for line in lines if line[2] or line[3])
    report = {
        "chosen": {k: best[k] for k in ("fuse_weight", "touching_weight", "classifier_weight", "margin",
                                        "touching_margin", "lone_margin")},
        "best": best, "touching_margins": touching_grid, "cuts_alone": cuts_alone,
        "line_model_wherever_they_differ": line_alone,
        "either_reader_right": either,
        "lines_where_the_readers_differ": disagreements, "best_50": grid[:50],
        "setup": {"seed": args.seed, "per_category": args.per_category, "real": args.real,
                  "digits": f"MNIST train, optdigits-orig.tra ({args.digits})",
                  "touching_margin_only": args.touching_margin_only,
                  "line_reader": resources.shown(args.line_reader),
                  "seconds": round(time.perf_counter() - started, 1)},
    }
    decided = sum(1 for r in records.values() for lines in r if lines for _, _, *odds_and_counts in lines
                  if chosen.line_wins(*odds_and_counts))
    report["lines_the_line_model_decides"] = decided
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"chosen: {report['chosen']} ({LINE} decides {decided} of {disagreements} disagreeing lines)")


if __name__ == "__main__":
    run_script(main)
