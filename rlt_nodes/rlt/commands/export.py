"""`rlt export`: write the VLA and the RL-token encoder (or, for the "no RL token" ablation, the image-feature
encoder) as one ONNX graph following the VLA contract."""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_VLA = Path("artifacts/vla/vla.pt")
DEFAULT_TOKEN = Path("artifacts/token/token.pt")
DEFAULT_OUT = Path("artifacts/vla.onnx")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--vla", type=Path, default=DEFAULT_VLA, help="VLA checkpoint")
    encoder = parser.add_mutually_exclusive_group()
    encoder.add_argument("--token", dest="encoder", type=Path, default=DEFAULT_TOKEN, metavar="CHECKPOINT",
                         help=f"RL-token checkpoint (default: {DEFAULT_TOKEN})")
    encoder.add_argument("--image-features", dest="encoder", type=Path, metavar="CHECKPOINT",
                         help="image-feature checkpoint (`rlt train image-features`) in the token's place: the "
                              "rl_token output is then the CNN features of the raw images (no-RL-token ablation)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="ONNX file to write")


def run(args: argparse.Namespace) -> int:
    from rlt.models.export import export_onnx

    report = export_onnx(args.vla, args.encoder, args.out)
    spec = report.spec
    print(
        f"wrote {report.path} (model id {spec.model_id}): cameras {', '.join(spec.cameras)} at "
        f"{spec.image_size} px, ref_chunk [{spec.chunk_len}, {spec.action_dim}], rl_token [{spec.token_dim}]"
    )
    print(
        f"ONNX Runtime vs PyTorch max |diff|: ref_chunk {report.max_abs_diff_ref_chunk:.2e}, "
        f"rl_token {report.max_abs_diff_rl_token:.2e}"
    )
    return 0
