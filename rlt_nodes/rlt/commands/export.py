"""`rlt export`: write the VLA and the RL-token encoder (or, for the "no RL token" ablation, the image-feature
encoder) as one ONNX graph following the VLA contract.

`--vla` may also be another lab's policy exported as ONNX on the embeddings contract `rlt.embed/1`: it is then
composed with a token trained on its embeddings (`rlt train token --vla POLICY.onnx`) into the same served graph.
`--embed-only` writes the project's VLA checkpoint alone on `rlt.embed/1`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rlt.models.contract import VlaSpec

DEFAULT_VLA = Path("artifacts/vla/vla.pt")
DEFAULT_TOKEN = Path("artifacts/token/token.pt")
DEFAULT_OUT = Path("artifacts/vla.onnx")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--vla", type=Path, default=DEFAULT_VLA,
                        help="VLA checkpoint (.pt), or a policy's ONNX graph on the embeddings contract rlt.embed/1 "
                             "(.onnx), composed with --token")
    encoder = parser.add_mutually_exclusive_group()
    encoder.add_argument("--token", dest="encoder", type=Path, default=DEFAULT_TOKEN, metavar="CHECKPOINT",
                         help=f"RL-token checkpoint (default: {DEFAULT_TOKEN})")
    encoder.add_argument("--image-features", dest="encoder", type=Path, metavar="CHECKPOINT",
                         help="image-feature checkpoint (`rlt train image-features`) in the token's place: the "
                              "rl_token output is then the CNN features of the raw images (no-RL-token ablation)")
    encoder.add_argument("--embed-only", action="store_true",
                         help="write the VLA checkpoint alone on the embeddings contract rlt.embed/1 (ref_chunk and "
                              "prefix_embeddings outputs, no encoder)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="ONNX file to write")


def run(args: argparse.Namespace) -> int:
    if args.vla.suffix == ".onnx":
        return _compose(args)
    if args.embed_only:
        from rlt.models.export import export_embed_onnx

        embedded = export_embed_onnx(args.vla, args.out)
        policy = embedded.spec
        print(f"wrote {embedded.path} ({policy.contract}, model id {policy.model_id}): cameras "
              f"{', '.join(policy.cameras)} at {policy.image_size} px, ref_chunk [{policy.chunk_len}, "
              f"{policy.action_dim}], prefix_embeddings [{policy.prefix_len}, {policy.embed_dim}]")
        print(f"ONNX Runtime vs PyTorch max |diff|: ref_chunk {embedded.max_abs_diff_ref_chunk:.2e}, "
              f"prefix_embeddings {embedded.max_abs_diff_prefix:.2e}")
        return 0

    from rlt.models.export import export_onnx

    report = export_onnx(args.vla, args.encoder, args.out)
    _print_written(report.path, report.spec)
    print(
        f"ONNX Runtime vs PyTorch max |diff|: ref_chunk {report.max_abs_diff_ref_chunk:.2e}, "
        f"rl_token {report.max_abs_diff_rl_token:.2e}"
    )
    return 0


def _compose(args: argparse.Namespace) -> int:
    from rlt.models.checkpoint import checkpoint_kind
    from rlt.models.export import compose_onnx
    from rlt.models.rl_token import CHECKPOINT_KIND

    if args.embed_only:
        raise ValueError(f"--embed-only writes a VLA checkpoint (.pt) on rlt.embed/1; {args.vla} is already ONNX")
    if checkpoint_kind(args.encoder) != CHECKPOINT_KIND:
        raise ValueError(f"{args.encoder} is not an RL-token checkpoint: an ONNX policy is composed with an RL token "
                         f"trained on its embeddings (`rlt train token --vla {args.vla} --data DATASET`)")
    report = compose_onnx(args.vla, args.encoder, args.out)
    _print_written(report.path, report.spec)
    print(f"composed {args.vla} (policy {report.policy.model_id}, prefix_embeddings [{report.policy.prefix_len}, "
          f"{report.policy.embed_dim}]) with {args.encoder}")
    print(f"composed graph vs the two graphs run separately in ONNX Runtime, max |diff|: ref_chunk "
          f"{report.max_abs_diff_ref_chunk:.2e}, rl_token {report.max_abs_diff_rl_token:.2e} (encoder graph vs "
          f"PyTorch {report.max_abs_diff_encoder:.2e})")
    return 0


def _print_written(path: Path, spec: VlaSpec) -> None:
    print(f"wrote {path} (model id {spec.model_id}): cameras {', '.join(spec.cameras)} at {spec.image_size} px, "
          f"ref_chunk [{spec.chunk_len}, {spec.action_dim}], rl_token [{spec.token_dim}]")
