"""Configs of the frozen VLA (`VlaConfig`), its behaviour cloning (`VlaTrainConfig`), the RL token (`TokenConfig`)
and the image-feature encoder of the no-RL-token ablation (`ImageFeaturesConfig`).

This module owns the model-side tunables and their defaults (the CLI sets them with `--set vla.d_model=96`,
`rlt.overrides`; the field comments are its `--help`). Sizes are chosen to train in minutes on two CPU cores (see
`rlt.models.vla`). It must not import torch, MuJoCo, rclpy or any message package.
"""

from __future__ import annotations

import dataclasses

from rlt.config import Config

DEFAULT_INSTRUCTION = "insert the peg into the socket"  # = rlt.sim.env.TASK_INSTRUCTION
LOSSES: tuple[str, ...] = ("l1", "l2")
ACTION_NAMES: tuple[str, ...] = ("dx", "dy", "dz", "dyaw")  # m, m, m, rad per control step (rlt.sim.env.AXIS_NAMES)


@dataclasses.dataclass(frozen=True)
class VlaConfig(Config):
    """Architecture and I/O of the small vision-language-action transformer.

    Token sequence: patch tokens of every camera, one proprio token, the instruction's word tokens, one action
    readout token. The prefix (patches + proprio) is what the RL token compresses.
    """

    cameras: tuple[str, ...] = ("front", "wrist")  # camera names, in input order
    image_size: int = 96  # px, square RGB input images
    patch_size: int = 16  # px, side of one patch token; must divide image_size and be a multiple of stem_stride
    stem_stride: int = 4  # px, stride of the first convolution of the patchify stem
    stem_channels: int = 32  # channels after the first stem convolution
    d_model: int = 64  # transformer width
    layers: int = 4  # transformer blocks
    heads: int = 4  # attention heads; must divide d_model
    mlp_ratio: int = 4  # MLP hidden width = mlp_ratio * d_model
    dropout: float = 0.0  # dropout inside the transformer blocks (training only)
    chunk_len: int = 20  # H, steps of the predicted reference chunk (the RL actor uses the first C)
    action_dim: int = 4  # D
    action_names: tuple[str, ...] = ACTION_NAMES  # names of the D action axes, in order
    action_scale: tuple[float, ...] = (0.004, 0.004, 0.004, 0.05)  # per-axis bound that maps to 1 (m, m, m, rad)
    proprio_dim: int = 12  # P, proprio size (hand pose, then velocities)
    instruction: str = DEFAULT_INSTRUCTION  # the fixed task string
    vocab_size: int = 512  # word-hash vocabulary of the instruction tokenizer (id 0 = padding)
    max_instruction_tokens: int = 12  # instruction tokens after padding or truncation

    def validate(self) -> None:
        if not self.cameras:
            self.fail("cameras", "must name at least one camera")
        if len(set(self.cameras)) != len(self.cameras):
            self.fail("cameras", "lists a camera twice")
        for camera in self.cameras:
            if not camera.isidentifier():
                self.fail("cameras", f"camera name {camera!r} must be an identifier (it names an ONNX input)")
        self.require_range("image_size", 16, 1024)
        self.require_range("patch_size", 2, self.image_size)
        if self.image_size % self.patch_size:
            self.fail("patch_size", f"must divide image_size={self.image_size}")
        self.require_range("stem_stride", 1, self.patch_size)
        if self.patch_size % self.stem_stride:
            self.fail("stem_stride", f"must divide patch_size={self.patch_size}")
        self.require_positive("stem_channels", "d_model", "layers", "heads", "mlp_ratio", "chunk_len")
        if self.d_model % self.heads:
            self.fail("heads", f"must divide d_model={self.d_model}")
        self.require_range("dropout", 0.0, 0.9)
        self.require_positive("action_dim", "proprio_dim")
        if len(self.action_names) != self.action_dim:
            self.fail("action_names", f"must list action_dim={self.action_dim} names")
        if len(self.action_scale) != self.action_dim or min(self.action_scale) <= 0:
            self.fail("action_scale", f"must list action_dim={self.action_dim} values, all > 0")
        if not self.instruction.strip():
            self.fail("instruction", "must not be empty")
        self.require_range("vocab_size", 2, 1 << 20)
        self.require_range("max_instruction_tokens", 1, 256)

    @property
    def patches_per_camera(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    @property
    def prefix_len(self) -> int:
        """M: tokens whose final-layer embeddings feed the RL token (all patches + the proprio token)."""
        return len(self.cameras) * self.patches_per_camera + 1


@dataclasses.dataclass(frozen=True)
class VlaTrainConfig(Config):
    """Behaviour cloning of the VLA on demonstrations: L1 on normalized action chunks."""

    steps: int = 3000  # gradient steps
    batch_size: int = 64  # samples (one step's images, proprio and action chunk) per gradient step
    lr: float = 1e-3  # peak AdamW learning rate (linear warmup, then cosine decay to lr_min_ratio * lr)
    lr_min_ratio: float = 0.05  # the learning rate at the end, as a fraction of lr
    warmup_steps: int = 100  # steps of linear warmup from 0 to lr
    weight_decay: float = 1e-4  # AdamW weight decay
    grad_clip: float = 1.0  # max global gradient norm
    seed: int = 0  # the held-out episodes, initialization, batch sampling and augmentation
    checkpoint_every: int = 500  # steps between checkpoints (always written at the end)
    shift_pixels: int = 2  # augmentation: random image shift of up to this many px (replicate padding); 0 = off
    successes_only: bool = True  # train on successful demonstrations only
    loss: str = "l2"  # l1 or l2, on normalized action chunks (see rlt.models.vla for why l2)
    balance_axes: bool = True  # give each action axis the same share of the initial loss (small x/y corrections)
    cumulative_loss: bool = True  # compare running sums of the chunks (displacements), not per-step deltas
    holdout_fraction: float = 0.1  # fraction of episodes kept out of training (validation loss, token probe)
    num_threads: int = 0  # torch intra-op threads; 0 = leave torch's default

    def validate(self) -> None:
        self.require_positive("steps", "batch_size", "lr", "checkpoint_every")
        self.require_range("lr_min_ratio", 0.0, 1.0)
        self.require_range("warmup_steps", 0, 1 << 30)  # capped at steps by the schedule
        self.require_range("weight_decay", 0.0, 1.0)
        self.require_positive("grad_clip")
        self.require_range("seed", 0, 2**63 - 1)
        self.require_range("shift_pixels", 0, 64)
        self.require_range("holdout_fraction", 0.0, 0.9)
        self.require_range("num_threads", 0, 1024)
        self.require_choice("loss", LOSSES)


@dataclasses.dataclass(frozen=True)
class TokenConfig(Config):
    """RL-token encoder–decoder (RLT stage 1) and its training on the frozen VLA's prefix embeddings."""

    token_dim: int = 256  # Z, size of z_rl
    slots: int = 4  # K readout positions e_rl whose encoder outputs form z_rl (1 = the paper's single token)
    layers: int = 2  # encoder blocks (the decoder has as many)
    heads: int = 4  # attention heads; must divide the VLA's d_model
    mlp_ratio: int = 4  # MLP hidden width = mlp_ratio * the VLA's d_model
    context_dropout: float = 0.9  # probability of zeroing each teacher-forced decoder input token (training only)
    standardize: bool = True  # work on embeddings minus their training mean per (position, feature), over their RMS
    linear_path: bool = True  # add a linear map of the whole prefix to z_rl, initialized to its principal directions
    goal_weight: float = 1.0  # weight of the hindsight-goal loss on z_rl's first len(goal_axes) entries; 0 = off
    goal_axes: tuple[int, ...] = (0, 1, 3)  # proprio entries (hand x, y, yaw) whose displacement to the episode's
    #                                         final, inserted pose those entries predict (rlt.models.rl_token)
    goal_scale: tuple[float, ...] = (0.002, 0.002, 0.02)  # m, m, rad: one unit of each goal entry
    rl_entries: int = 3  # leading z_rl entries exported as the RL state (3 = the goal entries); 0 = all token_dim
    steps: int = 3000  # gradient steps
    batch_size: int = 64  # frames per step
    lr: float = 1e-3  # peak AdamW learning rate (linear warmup, cosine decay)
    warmup_steps: int = 100  # steps of linear warmup from 0 to lr
    weight_decay: float = 1e-4  # AdamW weight decay
    grad_clip: float = 1.0  # max global gradient norm
    seed: int = 0  # initialization, batch sampling and the held-out episodes
    checkpoint_every: int = 1000  # steps between checkpoints (always written at the end)
    holdout_fraction: float = 0.1  # held-out episodes for the diagnostics (split like the VLA's, by seed)
    probe_ridge: float = 1.0  # ridge penalty of the linear probe on standardized z_rl
    num_threads: int = 0  # torch intra-op threads; 0 = leave torch's default

    def validate(self) -> None:
        self.require_positive("token_dim", "slots", "layers", "heads", "mlp_ratio", "steps", "batch_size", "lr")
        self.require_range("context_dropout", 0.0, 1.0)
        self.require_range("warmup_steps", 0, 1 << 30)  # capped at steps by the schedule
        self.require_range("weight_decay", 0.0, 1.0)
        self.require_positive("grad_clip", "checkpoint_every")
        self.require_range("seed", 0, 2**63 - 1)
        self.require_range("holdout_fraction", 0.01, 0.9)
        self.require_range("probe_ridge", 0.0, 1e9)
        self.require_range("num_threads", 0, 1024)
        self.require_range("goal_weight", 0.0, 1e6)
        if not 0 < len(self.goal_axes) < self.token_dim or min(self.goal_axes) < 0:
            self.fail("goal_axes", f"must list 1 to token_dim-1={self.token_dim - 1} proprio indices >= 0")
        if len(self.goal_scale) != len(self.goal_axes) or min(self.goal_scale) <= 0:
            self.fail("goal_scale", f"must list one value > 0 per goal axis ({len(self.goal_axes)})")
        self.require_range("rl_entries", 0, self.token_dim)
        if self.goal_weight == 0 and self.rl_entries not in (0, self.token_dim):
            self.fail("rl_entries", "must be 0 (all of z_rl) when goal_weight=0: without the goal loss the leading "
                      "entries are not the goal")


@dataclasses.dataclass(frozen=True)
class ImageFeaturesConfig(Config):
    """Image-feature encoder of the "no RL token" ablation (`rlt.models.image_features`) and its training.

    A small CNN applied to each camera's raw image, trained as an autoencoder on the demo frames (reconstructing
    `recon_size` px downsampled images) and frozen; its features take z_rl's place. Defaults train in about
    2-4 minutes on two CPU cores.
    """

    feature_dim: int = 256  # Z, features of all cameras together (Z / cameras each); = TokenConfig.token_dim
    channels: tuple[int, ...] = (16, 32, 64, 64)  # output channels of the stride-2 4x4 convolutions (and decoder)
    recon_size: int = 48  # px, side of the reconstruction target (the input image area-downsampled)
    steps: int = 1500  # gradient steps
    batch_size: int = 32  # frames per step (every camera's image of each frame is one autoencoder sample)
    lr: float = 2e-3  # peak AdamW learning rate (linear warmup, cosine decay)
    warmup_steps: int = 50  # steps of linear warmup from 0 to lr
    weight_decay: float = 1e-4  # AdamW weight decay
    grad_clip: float = 1.0  # max global gradient norm
    shift_pixels: int = 2  # augmentation: random image shift of up to this many px (input and target alike)
    seed: int = 0  # initialization, batch sampling and augmentation
    checkpoint_every: int = 500  # steps between checkpoints (always written at the end)
    stats_frames: int = 2048  # training frames (evenly spaced) that set the feature standardization
    probe_ridge: float = 1.0  # ridge penalty of the diagnostic linear probe (as TokenConfig.probe_ridge)
    num_threads: int = 0  # torch intra-op threads; 0 = leave torch's default

    def validate(self) -> None:
        self.require_positive("feature_dim", "steps", "batch_size", "lr", "grad_clip", "checkpoint_every",
                              "stats_frames")
        if not self.channels or min(self.channels) < 1:
            self.fail("channels", "must list at least one convolution, all with >= 1 channel")
        self.require_range("recon_size", 1, 1024)
        down = 2 ** len(self.channels)
        if self.recon_size % down:
            self.fail("recon_size", f"must be a multiple of 2^len(channels)={down} (the decoder doubles its grid "
                                    "once per channel entry)")
        self.require_range("warmup_steps", 0, 1 << 30)  # capped at steps by the schedule
        self.require_range("weight_decay", 0.0, 1.0)
        self.require_range("shift_pixels", 0, 64)
        self.require_range("seed", 0, 2**63 - 1)
        self.require_range("probe_ridge", 0.0, 1e9)
        self.require_range("num_threads", 0, 1024)
