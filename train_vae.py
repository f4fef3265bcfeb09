"""Train the convolutional VAE that draws digit variations.

    python train_vae.py --config configs/vae.yaml [--training.epochs 3] [--device cpu]

Keeps the best-validation epoch (negative ELBO), scores it on the binarized test set (negative ELBO and an
importance-weighted log-likelihood estimate, in nats), and writes the checkpoint, results/vae/metrics.json,
sample grids every few epochs to results/vae_samples/ and reconstructions beside their inputs.
"""

from __future__ import annotations

from digit_studio import cli
from digit_studio.cli import run_script
from digit_studio.config import VAEConfig, config_from_args


def main() -> None:
    args = cli.training_parser(__doc__, VAEConfig, "configs/vae.yaml").parse_args()
    config = config_from_args(args, VAEConfig)
    from digit_studio.training.vae import train_vae  # torch loads only now: --help answers at once

    m = train_vae(config, resume=args.resume)
    iw = m["iw_subset"]
    print(
        f"best epoch {m['best_epoch']}: test negative ELBO {m['test_negative_elbo']:.2f} "
        f"± {m['test_negative_elbo_sem']:.2f} nats ({m['test_digits']} digits, {m['elbo_samples']} samples each); "
        f"importance-weighted NLL {iw['iw_nll']:.2f} nats (k={iw['iw_samples']}, {iw['which']}; "
        f"their negative ELBO {iw['negative_elbo']:.2f}); {m['parameters']:,} parameters, "
        f"{m['train_seconds']:.0f}s of training -> {config.output.checkpoint}"
    )


if __name__ == "__main__":
    run_script(main)
