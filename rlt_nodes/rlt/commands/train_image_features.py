"""`rlt train image-features`: train the CNN image encoder of the "no RL token" ablation (an autoencoder on the
demo frames), the stand-in for z_rl that `rlt export --image-features` puts into the contract graph."""

from __future__ import annotations

import argparse
from pathlib import Path

from rlt import overrides
from rlt.commands.train_token import add_encoder_arguments, run_encoder

SECTIONS: overrides.Sections = {"features": "rlt.models.config:ImageFeaturesConfig"}
DEFAULT_OUT = Path("artifacts/image_features")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_encoder_arguments(parser, DEFAULT_OUT, "image_features.pt",
                          "VLA checkpoint: only its cameras, image size and episode split are used",
                          SECTIONS, "features.feature_dim=128")


def run(args: argparse.Namespace) -> int:
    from rlt.models.image_features import diagnose_image_features, train_image_features

    return run_encoder(args, SECTIONS, train_image_features, diagnose_image_features)
