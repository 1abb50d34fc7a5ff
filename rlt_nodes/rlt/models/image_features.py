"""Image features for the "no RL token" ablation: a small CNN on the raw camera images takes z_rl's place.

The paper's ablation replaces z_rl with the features of a frozen generic (ImageNet ResNet-10) encoder. No
pretrained weights can be downloaded here, so the closest honest analog is a small CNN trained self-supervised,
as an image autoencoder, on the demo frames only (never on the VLA's embeddings or on privileged state), then
frozen. This module owns that encoder (`ImageFeatures`), its training (`train_image_features`), its checkpoint
format (kind "rlt.image_features") and its diagnostics (`diagnose_image_features`: the same ridge probe of the
tip-to-hole offset as the RL token's, so the two can be compared). `rlt.models.export` puts it in the contract
graph in place of the RL token; the VLA node, actor and learner then run unchanged.

    encoder: each camera's image uint8[S, S, 3] --len(channels) x (4x4 conv, stride 2, GELU)--> flatten
             --linear--> Z / K numbers (one shared encoder for every camera, like a frozen generic backbone)
             --concatenate the K cameras, standardize--> features float32[Z]
    decoder: Z / K numbers --linear--> grid (recon_size / 2^len(channels))^2 x channels[-1]
             --len(channels) x (4x4 transposed conv, stride 2)--> image float32[3, R, R], R = recon_size
    loss:    mean squared error against the input image area-downsampled to R x R (pixels in [-0.5, 0.5])

The decoder is used in training only. The features are standardized like the RL token's inputs: the training
frames' mean per feature is subtracted and the result divided by one scalar, the RMS of what remains (statistics
stored in the model), so the actor sees numbers of unit scale. The VLA checkpoint is read only for its camera
list, image size and train / held-out episode split; the VLA itself is never run here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from rlt.models.bc import DemoSource, demo_paths
from rlt.models.checkpoint import load_checkpoint, save_checkpoint
from rlt.models.config import ImageFeaturesConfig, VlaConfig
from rlt.models.data import random_shift
from rlt.models.layers import init_weights
from rlt.models.probes import probe_report, probe_table
from rlt.models.rl_token import held_out_frames, vla_split_frames
from rlt.models.trainer import Schedule, fit, set_threads

CHECKPOINT_KIND = "rlt.image_features"
CHECKPOINT_NAME = "image_features.pt"


class ImageFeatures(nn.Module):
    """CNN autoencoder over the K camera images of a frame; `encode` gives the `cfg.feature_dim` features."""

    def __init__(self, cfg: ImageFeaturesConfig, cameras: tuple[str, ...], image_size: int) -> None:
        super().__init__()
        k, depth = len(cameras), len(cfg.channels)
        if k == 0 or cfg.feature_dim % k:
            raise ValueError(f"ImageFeaturesConfig.feature_dim={cfg.feature_dim} must be a multiple of the VLA's "
                             f"{k} cameras ({', '.join(cameras)}): each camera gets feature_dim / cameras")
        if image_size < 2**depth:
            raise ValueError(f"VlaConfig.image_size={image_size} is too small for len(ImageFeaturesConfig.channels)="
                             f"{depth} stride-2 convolutions (needs >= {2**depth} px)")
        if cfg.recon_size > image_size:
            raise ValueError(f"ImageFeaturesConfig.recon_size={cfg.recon_size} must be <= VlaConfig.image_size="
                             f"{image_size} (the target is the image downsampled)")
        self.cfg, self.cameras, self.image_size = cfg, tuple(cameras), image_size
        self.per_camera = cfg.feature_dim // k
        layers: list[nn.Module] = []
        for c_in, c_out in zip((3, *cfg.channels), cfg.channels, strict=False):
            layers += [nn.Conv2d(c_in, c_out, kernel_size=4, stride=2, padding=1), nn.GELU()]
        self.conv = nn.Sequential(*layers)
        side = image_size
        for _ in cfg.channels:
            side //= 2  # a 4x4 stride-2 convolution with padding 1 halves (and floors) the side
        self.to_features = nn.Linear(cfg.channels[-1] * side * side, self.per_camera)
        self.grid = cfg.recon_size // 2**depth
        self.from_features = nn.Linear(self.per_camera, cfg.channels[-1] * self.grid * self.grid)
        up: list[nn.Module] = []
        outs = (*reversed(cfg.channels[:-1]), 3)
        for c_in, c_out in zip(reversed(cfg.channels), outs, strict=True):
            up += [nn.GELU(), nn.ConvTranspose2d(c_in, c_out, kernel_size=4, stride=2, padding=1)]
        self.deconv = nn.Sequential(*up)
        self.apply(init_weights)
        self.register_buffer("feature_mean", torch.zeros(cfg.feature_dim))  # float32[Z]
        self.register_buffer("feature_scale", torch.ones(()))  # float32[], RMS of features - feature_mean

    @staticmethod
    def pixels(images: Tensor) -> Tensor:
        """uint8[B, K, S, S, 3] RGB -> float32[B*K, 3, S, S] in [-0.5, 0.5] (the VLA's convention)."""
        b, k, s = images.shape[0], images.shape[1], images.shape[2]
        return images.reshape(b * k, s, s, 3).permute(0, 3, 1, 2).float() / 255.0 - 0.5

    def codes(self, pixels: Tensor) -> Tensor:
        """float32[N, 3, S, S] -> raw per-image codes float32[N, Z/K] (not standardized)."""
        return self.to_features(self.conv(pixels).flatten(1))

    def decode(self, codes: Tensor) -> Tensor:
        """float32[N, Z/K] -> reconstruction float32[N, 3, R, R]."""
        grid = self.from_features(codes).reshape(len(codes), self.cfg.channels[-1], self.grid, self.grid)
        return self.deconv(grid)

    def target(self, pixels: Tensor) -> Tensor:
        """float32[N, 3, S, S] -> the reconstruction target float32[N, 3, R, R] (area downsampling)."""
        return F.adaptive_avg_pool2d(pixels, self.cfg.recon_size)

    def raw_features(self, images: Tensor) -> Tensor:
        """uint8[B, K, S, S, 3] -> float32[B, Z]: the K cameras' codes concatenated in camera order."""
        return self.codes(self.pixels(images)).reshape(len(images), self.cfg.feature_dim)

    def encode(self, images: Tensor) -> Tensor:
        """uint8[B, K, S, S, 3] RGB (cameras in `self.cameras` order) -> standardized features float32[B, Z]."""
        return (self.raw_features(images) - self.feature_mean) / self.feature_scale

    def set_feature_stats(self, raw: Tensor) -> None:
        """Store the mean float32[Z] and the RMS deviation from it (a scalar) of raw training features [N, Z]."""
        mean = raw.mean(0)
        self.feature_mean.copy_(mean)
        self.feature_scale.copy_(((raw - mean) ** 2).mean().sqrt().clamp(min=1e-6))

    def loss(self, images: Tensor) -> Tensor:
        """Mean squared reconstruction error of uint8[B, K, S, S, 3] images, over pixels, channels and images."""
        pixels = self.pixels(images)
        return ((self.decode(self.codes(pixels)) - self.target(pixels)) ** 2).mean()


def train_image_features(
    vla_checkpoint: str | Path,
    demos: DemoSource,
    out_dir: str | Path,
    cfg: ImageFeaturesConfig | None = None,
    *,
    progress: bool = True,
) -> Path:
    """Train the image autoencoder on the VLA's training episodes; returns `out_dir/image_features.pt`.

    `vla_checkpoint` gives the cameras, the image size and the episode split (the VLA is not run). The checkpoint
    is rewritten every `checkpoint_every` steps; the final one also holds the feature standardization.
    """
    cfg = cfg or ImageFeaturesConfig()
    set_threads(cfg.num_threads)
    vla_cfg, frames, split = vla_split_frames(vla_checkpoint, demos)
    train = frames.of_episodes(split["train"])
    del frames
    images = torch.from_numpy(train.images)  # uint8[N, K, S, S, 3]
    torch.manual_seed(cfg.seed)
    model = ImageFeatures(cfg, vla_cfg.cameras, vla_cfg.image_size)

    def batch_loss(generator: torch.Generator) -> Tensor:
        idx = torch.randint(len(images), (cfg.batch_size,), generator=generator)
        return model.loss(random_shift(images[idx], cfg.shift_pixels, generator))

    def payload() -> dict[str, Any]:
        return {"kind": CHECKPOINT_KIND, "config": cfg.to_dict(), "model": model.state_dict(),
                "cameras": list(vla_cfg.cameras), "image_size": vla_cfg.image_size,
                "vla_checkpoint": str(vla_checkpoint), "demos": demo_paths(demos)}

    checkpoint = Path(out_dir) / CHECKPOINT_NAME
    schedule = Schedule(cfg.steps, cfg.lr, cfg.warmup_steps, 0.05, cfg.weight_decay, cfg.grad_clip,
                        cfg.checkpoint_every, cfg.seed)
    result = fit(model, batch_loss, schedule, checkpoint, payload, progress=progress, desc="train image features")
    stats = np.linspace(0, len(images) - 1, min(cfg.stats_frames, len(images))).round().astype(np.int64)
    model.set_feature_stats(_batched(model.raw_features, images[stats]))
    final = load_checkpoint(checkpoint, CHECKPOINT_KIND)
    save_checkpoint(checkpoint, {**final, "model": model.state_dict()})
    if progress:
        print(f"image features: {result.steps} steps, final reconstruction MSE {result.final_loss:.5f}, "
              f"{result.wall_s:.0f} s -> {checkpoint}")
    return checkpoint


def load_image_features(path: str | Path) -> ImageFeatures:
    """The image-feature encoder stored at `path`, in eval mode, gradients off."""
    ckpt = load_checkpoint(path, CHECKPOINT_KIND)
    cfg = ImageFeaturesConfig.from_dict(ckpt["config"], source=str(path))
    model = ImageFeatures(cfg, tuple(ckpt["cameras"]), int(ckpt["image_size"]))
    model.load_state_dict(ckpt["model"])
    return model.eval().requires_grad_(False)


def check_compatible(vla_cfg: VlaConfig, features: ImageFeatures) -> None:
    """Raise ValueError unless `features` was built for the VLA's cameras and image size."""
    if (features.cameras, features.image_size) != (vla_cfg.cameras, vla_cfg.image_size):
        raise ValueError(f"the image features expect cameras {', '.join(features.cameras)} at "
                         f"{features.image_size} px; the VLA has {', '.join(vla_cfg.cameras)} at "
                         f"{vla_cfg.image_size} px: train them with this VLA's checkpoint")


@torch.no_grad()
def diagnose_image_features(
    checkpoint: str | Path,
    vla_checkpoint: str | Path | None = None,
    demos: DemoSource | None = None,
    *,
    seed: int = 0,
    verbose: bool = True,
) -> dict[str, float]:
    """Reconstruction and the linear probe of the image features on the VLA's held-out episodes.

    The VLA checkpoint and demos default to those the encoder was trained with. Returns loss_real (held-out
    reconstruction MSE), loss_shuffled (each image decoded from another held-out frame's code of the same
    camera), loss_mean_image (predicting every image by the training frames' mean target: the scale of what
    there is to reconstruct), probe_r2_<x|y|yaw> (ridge on the features), probe_proprio_r2_<x|y|yaw> (the same
    probe on proprio), the same two on held-out frames near the hole only (probe_near_r2_*,
    probe_proprio_near_r2_*), held_out_frames, held_out_near_frames. Prints a report when `verbose`.
    """
    _, vla_cfg, fit_frames, test_frames = held_out_frames(checkpoint, CHECKPOINT_KIND, vla_checkpoint, demos)
    model = load_image_features(checkpoint)
    check_compatible(vla_cfg, model)
    test_images = torch.from_numpy(test_frames.images)
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(test_images), generator=generator)
    other = torch.empty_like(order)
    other[order] = order.roll(1)  # every frame gets another frame's code
    mean_target = _mean_target(model, torch.from_numpy(fit_frames.images))  # float32[K, 3, R, R]
    sums = {"loss_real": 0.0, "loss_shuffled": 0.0, "loss_mean_image": 0.0}
    k = len(model.cameras)
    for i in range(0, len(test_images), 256):
        pixels = model.pixels(test_images[i : i + 256])  # float32[b*K, 3, S, S]
        target = model.target(pixels)
        own = model.codes(pixels)
        theirs = model.codes(model.pixels(test_images[other[i : i + 256]]))
        b = len(pixels) // k
        sums["loss_real"] += float(((model.decode(own) - target) ** 2).mean()) * b
        sums["loss_shuffled"] += float(((model.decode(theirs) - target) ** 2).mean()) * b
        means = mean_target.repeat(b, 1, 1, 1)
        sums["loss_mean_image"] += float(((means - target) ** 2).mean()) * b
    report = {name: total / len(test_images) for name, total in sums.items()}
    report["held_out_frames"] = float(len(test_frames))
    x_fit = _batched(model.encode, torch.from_numpy(fit_frames.images)).numpy()
    x_test = _batched(model.encode, test_images).numpy()
    report.update(probe_report(x_fit, x_test, fit_frames, test_frames, model.cfg.probe_ridge))
    if verbose:
        print(format_diagnosis(report))
    return report


def format_diagnosis(report: dict[str, float]) -> str:
    """Human-readable report of `diagnose_image_features`."""
    real, shuffled, mean = report["loss_real"], report["loss_shuffled"], report["loss_mean_image"]
    lines = [
        f"image-feature diagnostics on {int(report['held_out_frames'])} held-out frames",
        "  reconstruction MSE (pixels in [-0.5, 0.5]; lower is better)",
        f"    own features       {real:9.5f}",
        f"    shuffled features  {shuffled:9.5f}   ({shuffled / real:.2f}x own)",
        f"    mean image         {mean:9.5f}   ({mean / real:.2f}x own; ignores the frame)",
        *probe_table(report, "features"),
    ]
    return "\n".join(lines)


def _mean_target(model: ImageFeatures, images: Tensor, batch_size: int = 256) -> Tensor:
    """Mean reconstruction target per camera float32[K, 3, R, R] over uint8[N, K, S, S, 3] images."""
    k, r = len(model.cameras), model.cfg.recon_size
    total = torch.zeros(k, 3, r, r)
    for i in range(0, len(images), batch_size):
        target = model.target(model.pixels(images[i : i + batch_size]))  # float32[b*K, 3, R, R]
        total += target.reshape(-1, k, 3, r, r).sum(0)
    return total / max(len(images), 1)


def _batched(fn: Any, x: Tensor, batch_size: int = 256) -> Tensor:
    with torch.no_grad():
        return torch.cat([fn(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
