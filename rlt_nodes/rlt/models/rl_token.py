"""The RL token (RLT stage 1): compress the frozen VLA's prefix embeddings into one vector z_rl.

This module owns the encoder–decoder (`RlToken`), its training on demonstrations (`train_token` for the project's
VLA checkpoint; `fit_token` on embeddings from any source, e.g. another lab's ONNX policy via
`rlt.models.embed`), its checkpoint format, and the diagnostics that say whether z_rl is useful (`diagnose_token`).

    encoder: [z_1 .. z_M, e_rl^1 .. e_rl^K] --bidirectional transformer--> outputs at the K e_rl positions
             --concatenate, linear--> + a linear path over the whole prefix --> z_rl[Z]
    decoder: [W z_rl as K tokens, z̄_1 .. z̄_{M-1}] (+ position) --causal transformer--> linear --> ẑ_1 .. ẑ_M
    loss:    mean over i of ||ẑ_i − z̄_i||² (summed over features), z̄ = sg(z): the VLA gets no gradient

Why K slots, the linear path, the goal entries, context dropout and centring, with the measurements:
docs/models.md, section `rlt.models.rl_token`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from rlt.models.bc import DemoSource, demo_paths, select_episodes
from rlt.models.checkpoint import load_checkpoint
from rlt.models.config import TokenConfig, VlaConfig
from rlt.models.data import Frames, frames_from_episodes, split_episodes
from rlt.models.layers import Transformer, causal_mask, init_weights
from rlt.models.probes import NEAR_RADIUS, probe_report, probe_table, ridge_fit
from rlt.models.trainer import Schedule, fit, set_threads
from rlt.models.vla import CHECKPOINT_KIND as VLA_KIND
from rlt.models.vla import Vla, load_vla

CHECKPOINT_KIND = "rlt.token"
CHECKPOINT_NAME = "token.pt"
ROLLOUT_PROBE_FRAMES = 8192  # rollout frames the probe on the base policy's states is fitted on, at most
GOAL_RIDGE = 0.01  # ridge penalty of the goal rows' initialization, relative to the mean feature variance


class RlToken(nn.Module):
    """Encoder–decoder over M prefix embeddings of width d; the bottleneck z_rl has `cfg.token_dim` entries."""

    def __init__(self, cfg: TokenConfig, d_model: int, prefix_len: int) -> None:
        super().__init__()
        if d_model % cfg.heads:
            raise ValueError(f"TokenConfig.heads={cfg.heads} must divide the VLA's d_model={d_model}")
        self.cfg, self.d_model, self.prefix_len = cfg, d_model, prefix_len
        k = cfg.slots
        self.encoder = Transformer(d_model, cfg.layers, cfg.heads, cfg.mlp_ratio)
        self.e_rl = nn.Parameter(torch.zeros(k, d_model))
        self.to_token = nn.Linear(k * d_model, cfg.token_dim)
        self.from_token = nn.Linear(cfg.token_dim, k * d_model)
        self.decoder_in = nn.Linear(d_model, d_model)
        self.decoder_pos = nn.Parameter(torch.zeros(k - 1 + prefix_len, d_model))
        self.decoder = Transformer(d_model, cfg.layers, cfg.heads, cfg.mlp_ratio)
        self.head = nn.Linear(d_model, d_model)
        self.apply(init_weights)
        # W of the linear path; zero (no path) until init_linear_path, or always when cfg.linear_path is False
        self.linear = nn.Linear(prefix_len * d_model, cfg.token_dim, bias=False) if cfg.linear_path else None
        if self.linear is not None:
            nn.init.zeros_(self.linear.weight)
        nn.init.trunc_normal_(self.e_rl, std=0.02)
        nn.init.trunc_normal_(self.decoder_pos, std=0.02)
        self.register_buffer("causal", causal_mask(k - 1 + prefix_len))  # bool[K-1+M, K-1+M]
        self.register_buffer("embed_mean", torch.zeros(prefix_len, d_model))  # float32[M, d]
        self.register_buffer("embed_scale", torch.ones(()))  # float32[], RMS of embedding - embed_mean

    def set_embedding_stats(self, prefix: Tensor) -> None:
        """Store the mean float32[M, d] and the RMS deviation from it (a scalar) of training embeddings [N, M, d]."""
        mean = prefix.mean(0)
        self.embed_mean.copy_(mean)
        self.embed_scale.copy_(((prefix - mean) ** 2).mean().sqrt().clamp(min=1e-6))

    @property
    def state_dim(self) -> int:
        """Size of the RL state the token exports: its first `rl_entries` entries, or all Z when that is 0."""
        return self.cfg.rl_entries or self.cfg.token_dim

    def rl_state(self, prefix: Tensor) -> Tensor:
        """prefix float32[B, M, d] -> what the actor and critic read, float32[B, state_dim] (leading z_rl entries)."""
        return self.encode(prefix)[:, : self.state_dim]

    @property
    def goal_dims(self) -> int:
        """G: the leading entries of z_rl trained to predict the hindsight goal (0 with `goal_weight` = 0)."""
        return len(self.cfg.goal_axes) if self.cfg.goal_weight > 0 else 0

    @property
    def goal_scale(self) -> Tensor:
        """float32[G]: physical size of one unit of each goal entry."""
        return torch.tensor(self.cfg.goal_scale[: self.goal_dims], dtype=torch.float32)

    def goal_targets(self, proprio: Tensor, final_proprio: Tensor) -> Tensor:
        """float32[B, P] proprio and its episode's final proprio -> float32[B, G] goal entries (in goal_scale units)."""
        axes = list(self.cfg.goal_axes[: self.goal_dims])
        return (proprio[:, axes] - final_proprio[:, axes]) / self.goal_scale

    def goal(self, z_rl: Tensor) -> Tensor:
        """z_rl float32[B, Z] -> the predicted displacement to the goal pose float32[B, G], physical units."""
        return z_rl[:, : self.goal_dims] * self.goal_scale

    @torch.no_grad()
    def init_linear_path(self, prefix: Tensor, goal: Tensor | None = None, max_frames: int = 8192,
                         seed: int = 0) -> None:
        """Initialize W from training embeddings prefix[N, M, d] (and goal targets float32[N, G], NaN = unknown).

        Entries G.. : the top principal directions of the standardized embeddings over one scalar, which makes
        their mean variance over the training frames 1; each direction keeps its own share (not whitened: noise
        directions are not amplified), and directions beyond the data's rank stay zero. Entries :G (when the
        goal loss is on and `goal` is given): the ridge regression of the goal targets, so training starts at
        the prefix's best linear goal estimate. Call after `set_embedding_stats`; a no-op without the linear path.
        """
        if self.linear is None:
            return
        generator = torch.Generator().manual_seed(seed)
        pick = torch.randperm(len(prefix), generator=generator)[:max_frames]
        x = self.standardize(prefix[pick]).flatten(1)  # float32[N, M·d]
        mean = x.mean(0)
        x = x - mean
        g = self.goal_dims if goal is not None else 0
        q = min(self.cfg.token_dim - g, *x.shape)
        _, s, v = torch.svd_lowrank(x, q=q, niter=4)  # s float32[q], v float32[M·d, q]
        rms = (s.square().mean() / max(len(x) - 1, 1)).sqrt().clamp(min=1e-6)  # RMS std of the q projections
        self.linear.weight.zero_()
        self.linear.weight[g : g + q] = v.T / rms
        if g:
            y = goal[pick]  # float32[N, G]
            known = ~y.isnan().any(1)
            penalty = GOAL_RIDGE * float(x.square().sum()) / x.shape[1]  # relative to the mean feature variance
            w, b = (torch.from_numpy(a).float() for a in ridge_fit(x[known].numpy(), y[known].numpy(), penalty))
            self.linear.weight[:g] = w.T
            self.to_token.bias[:g] += b - mean @ w

    def standardize(self, prefix: Tensor) -> Tensor:
        """float32[B, M, d] VLA embeddings -> the space the token works in (identity without stored stats)."""
        return (prefix - self.embed_mean) / self.embed_scale

    def encode(self, prefix: Tensor) -> Tensor:
        """prefix float32[B, M, d] (raw VLA embeddings) -> z_rl float32[B, Z]."""
        return self._encode(self.standardize(prefix))

    def _encode(self, x: Tensor) -> Tensor:
        k = self.cfg.slots
        query = self.e_rl.expand(x.shape[0], -1, -1)  # float32[B, K, d]
        out = self.encoder(torch.cat([x, query], dim=1))  # float32[B, M + K, d]
        z_rl = self.to_token(out[:, -k:].flatten(1))  # float32[B, Z]
        return z_rl if self.linear is None else z_rl + self.linear(x.flatten(1))

    def decode(self, z_rl: Tensor, target: Tensor, context_dropout: float = 0.0,
               generator: torch.Generator | None = None) -> Tensor:
        """Teacher-forced reconstruction: z_rl float32[B, Z], standardized target float32[B, M, d] -> float32[B, M, d].

        Each teacher-forced input z̄_1 .. z̄_{M−1} is zeroed with probability `context_dropout`.
        """
        inputs = target[:, :-1]  # float32[B, M-1, d]
        if context_dropout > 0:
            keep = torch.rand(inputs.shape[:2], generator=generator) >= context_dropout  # bool[B, M-1]
            inputs = inputs * keep[..., None]
        k = self.cfg.slots
        slots = self.from_token(z_rl).reshape(len(z_rl), k, self.d_model)  # float32[B, K, d]
        x = torch.cat([slots, self.decoder_in(inputs)], dim=1) + self.decoder_pos  # float32[B, K-1+M, d]
        return self.head(self.decoder(x, self.causal))[:, k - 1 :]  # float32[B, M, d]

    def loss(self, prefix: Tensor, z_rl: Tensor | None = None, context_dropout: float | None = None,
             generator: torch.Generator | None = None) -> Tensor:
        """Reconstruction loss of `prefix` (detached: stop-gradient into the VLA) from `z_rl` (default: encoded).

        Squared error summed over features, averaged over tokens and frames, in the standardized space.
        `context_dropout` defaults to the config's in training mode and to 0 in eval mode.
        """
        target = self.standardize(prefix.detach())  # z̄ = sg(z)
        if z_rl is None:
            z_rl = self._encode(target)
        if context_dropout is None:
            context_dropout = self.cfg.context_dropout if self.training else 0.0
        pred = self.decode(z_rl, target, context_dropout, generator)
        return ((pred - target) ** 2).sum(-1).mean()


def prefix_embeddings(vla: Vla, images: Tensor, proprio: Tensor, batch_size: int = 256) -> Tensor:
    """Final-layer prefix embeddings float32[N, M, d] of the frozen VLA (no gradient), computed in batches."""
    vla.eval()
    with torch.no_grad():
        return torch.cat([vla(images[i : i + batch_size], proprio[i : i + batch_size])[1]
                          for i in range(0, len(images), batch_size)])


def train_token(
    vla_checkpoint: str | Path,
    demos: DemoSource,
    out_dir: str | Path,
    cfg: TokenConfig | None = None,
    *,
    rollouts: DemoSource | None = None,
    progress: bool = True,
) -> Path:
    """Train the RL token on the frozen VLA's embeddings of the VLA's training episodes (plus the training split of
    base-policy `rollouts`, when given); returns `out_dir/token.pt`.

    Another lab's policy (an ONNX file on `rlt.embed/1`) trains through `rlt.models.embed.train_token_onnx`; both
    end in `fit_token`.
    """
    cfg = cfg or TokenConfig()
    set_threads(cfg.num_threads)
    vla = load_vla(vla_checkpoint)
    vla_cfg, frames, split = vla_split_frames(vla_checkpoint, demos)
    train_frames = frames.of_episodes(split["train"])
    if rollouts is not None:
        train_frames = Frames.concat([train_frames, rollout_split_frames(rollouts, vla_cfg, cfg)[0]])
    prefix = _frame_prefix(vla, train_frames)  # float32[N, M, d]
    goal_frames = without_images(train_frames)
    del frames, train_frames
    provenance = {"vla_checkpoint": str(vla_checkpoint), "demos": demo_paths(demos),
                  "rollouts": demo_paths(rollouts) if rollouts is not None else []}
    return fit_token(prefix, goal_frames, out_dir, cfg, provenance, progress=progress)


def fit_token(prefix: Tensor, frames: Frames, out_dir: str | Path, cfg: TokenConfig, provenance: dict[str, Any], *,
              progress: bool = True) -> Path:
    """Train the RL token on precomputed embeddings prefix float32[N, M, E] of `frames` (same order; the goal
    targets come from their proprio, final proprio and episode outcome, so their images may be dropped first with
    `without_images`); returns `out_dir/token.pt`.

    The embedding source is the caller's: the project's VLA checkpoint (`train_token`) or another policy's ONNX
    graph (`rlt.models.embed`). `provenance` (plain values: where the embeddings and frames came from) is stored in
    the checkpoint after its "d_model" and "prefix_len" (E, M).
    """
    if prefix.ndim != 3 or len(prefix) != len(frames):
        raise ValueError(f"embeddings {tuple(prefix.shape)} do not match {len(frames)} frames: expected "
                         f"[{len(frames)}, M, E]")
    n, prefix_len, d_model = prefix.shape
    torch.manual_seed(cfg.seed)
    model = RlToken(cfg, d_model, prefix_len)
    if model.goal_dims and max(cfg.goal_axes) >= frames.proprio.shape[1]:
        raise ValueError(f"TokenConfig.goal_axes={cfg.goal_axes} index proprio entries, but the frames' proprio has "
                         f"{frames.proprio.shape[1]}; set goal_axes to the hand x, y, yaw entries or goal_weight=0")
    goal = _goal_targets(model, frames)  # float32[N, G], NaN where the episode failed
    del frames
    if cfg.standardize:
        model.set_embedding_stats(prefix)
    model.init_linear_path(prefix, goal, seed=cfg.seed)

    def batch_loss(generator: torch.Generator) -> Tensor:
        idx = torch.randint(n, (cfg.batch_size,), generator=generator)
        z_rl = model.encode(prefix[idx])  # float32[B, Z]
        loss = model.loss(prefix[idx], z_rl, generator=generator)
        if model.goal_dims:
            loss = loss + cfg.goal_weight * goal_loss(model, z_rl, goal[idx])
        return loss

    def payload() -> dict[str, Any]:
        return {"kind": CHECKPOINT_KIND, "config": cfg.to_dict(), "model": model.state_dict(),
                "d_model": d_model, "prefix_len": prefix_len, **provenance}

    checkpoint = Path(out_dir) / CHECKPOINT_NAME
    schedule = Schedule(cfg.steps, cfg.lr, cfg.warmup_steps, 0.05, cfg.weight_decay, cfg.grad_clip,
                        cfg.checkpoint_every, cfg.seed)
    result = fit(model, batch_loss, schedule, checkpoint, payload, progress=progress, desc="train token")
    if progress:
        print(f"RL token: {result.steps} steps, final loss {result.final_loss:.4f}, {result.wall_s:.0f} s "
              f"-> {checkpoint}")
    return checkpoint


def without_images(frames: Frames) -> Frames:
    """`frames` with an empty image array (uint8[N, 0, 1, 1, 3]): what training reads once the embeddings exist,
    without holding the images (the bulk of a dataset's memory)."""
    return dataclasses.replace(frames, images=np.zeros((len(frames), 0, 1, 1, 3), np.uint8))


def goal_loss(token: RlToken, z_rl: Tensor, target: Tensor) -> Tensor:
    """Squared error of z_rl's goal entries float32[B, G] vs `target` (NaN rows skipped), summed over G, averaged."""
    known = ~target.isnan().any(1)  # bool[B]
    if not known.any():
        return z_rl.sum() * 0.0
    return ((z_rl[known, : token.goal_dims] - target[known]) ** 2).sum(-1).mean()


def _goal_targets(token: RlToken, frames: Frames) -> Tensor:
    """float32[N, G] hindsight goal targets of `frames` (NaN for frames of failed episodes)."""
    target = token.goal_targets(torch.from_numpy(frames.proprio), torch.from_numpy(frames.final_proprio))
    target[~torch.from_numpy(frames.success)] = float("nan")
    return target


def load_token(path: str | Path) -> RlToken:
    """The RL token stored at `path`, in eval mode, gradients off."""
    return _token_from_checkpoint(load_checkpoint(path, CHECKPOINT_KIND), path)


def _token_from_checkpoint(ckpt: dict[str, Any], path: str | Path) -> RlToken:
    model = RlToken(TokenConfig.from_dict(ckpt["config"], source=str(path)), ckpt["d_model"], ckpt["prefix_len"])
    model.load_state_dict(ckpt["model"])
    return model.eval().requires_grad_(False)


def check_compatible(vla: Vla, token: RlToken) -> None:
    """Raise ValueError unless `token` was built for `vla`'s prefix (same M and d)."""
    if (token.prefix_len, token.d_model) != (vla.cfg.prefix_len, vla.cfg.d_model):
        raise ValueError(f"the RL token expects {token.prefix_len} prefix tokens of width {token.d_model}; the VLA "
                         f"has {vla.cfg.prefix_len} of width {vla.cfg.d_model}: train the token on this VLA")


@torch.no_grad()
def diagnose_token(
    token_checkpoint: str | Path,
    vla_checkpoint: str | Path | None = None,
    demos: DemoSource | None = None,
    *,
    seed: int = 0,
    verbose: bool = True,
) -> dict[str, float]:
    """Reconstruction gaps and the linear probe of the RL token on the VLA's held-out episodes.

    The VLA checkpoint and demos default to those the token was trained with; a token trained on an ONNX policy
    (`rlt.models.embed`) is diagnosed on that policy's embeddings and its own episode split, and probed only on
    frames that carry the privileged tip offset. Returns loss_real, loss_zero,
    loss_shuffled (context dropout at the training rate, the same masks for all three), loss_teacher_forced
    (real z_rl, no dropout), loss_mean_embedding (predicting every frame by the training frames' mean
    embedding: the scale of what there is to reconstruct), probe_r2_<x|y|yaw> (ridge on z_rl),
    probe_proprio_r2_<x|y|yaw> (the same probe on proprio: what the token adds), the same two on the held-out
    frames near the hole only (probe_near_r2_*, probe_proprio_near_r2_*: the critical phase, where offsets are
    millimetres), held_out_frames, held_out_near_frames. Prints a report when `verbose`.
    """
    ckpt = load_checkpoint(token_checkpoint, CHECKPOINT_KIND)
    token = _token_from_checkpoint(ckpt, token_checkpoint)
    vla: Vla | None = None
    if "embed_model" in ckpt:  # trained on another policy's embeddings (`rlt.models.embed`)
        from rlt.models.embed import held_out_embeddings

        fit_frames, test_frames, fit_prefix, test_prefix = held_out_embeddings(ckpt, token_checkpoint, vla_checkpoint,
                                                                               demos)
    else:
        if vla_checkpoint is not None and Path(vla_checkpoint).suffix == ".onnx":
            raise ValueError(f"{token_checkpoint} was trained on the VLA checkpoint {ckpt['vla_checkpoint']}, not on "
                             f"an ONNX policy; diagnose it with that checkpoint, not {vla_checkpoint}")
        vla_checkpoint, _, fit_frames, test_frames = held_out_frames(token_checkpoint, CHECKPOINT_KIND,
                                                                     vla_checkpoint, demos)
        vla = load_vla(vla_checkpoint)
        check_compatible(vla, token)
        test_prefix, fit_prefix = _frame_prefix(vla, test_frames), _frame_prefix(vla, fit_frames)
    z_test, z_fit = _batched(token.encode, test_prefix), _batched(token.encode, fit_prefix)
    mean_embedding = token.standardize(fit_prefix).mean(0)  # float32[M, d]: best guess that ignores the frame

    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(z_test), generator=generator)
    shuffled = torch.empty_like(z_test)
    shuffled[order] = z_test[order.roll(1)]  # every frame gets another frame's token
    p = token.cfg.context_dropout
    report: dict[str, float] = {
        "loss_real": _recon(token, test_prefix, z_test, p, seed),
        "loss_zero": _recon(token, test_prefix, torch.zeros_like(z_test), p, seed),
        "loss_shuffled": _recon(token, test_prefix, shuffled, p, seed),
        "loss_teacher_forced": _recon(token, test_prefix, z_test, 0.0, seed),
        "loss_mean_embedding": float(((token.standardize(test_prefix) - mean_embedding) ** 2).sum(-1).mean()),
        "held_out_frames": float(len(test_frames)),
    }
    report.update(probe_report(z_fit.numpy(), z_test.numpy(), fit_frames, test_frames, token.cfg.probe_ridge))
    report.update(goal_report(token, z_test, test_frames))
    rollouts = ckpt.get("rollouts") or []
    if rollouts and vla is not None:  # the base policy's own states: where the RL actor starts and explores
        fit_rollout, held_out = rollout_split_frames(rollouts, vla.cfg, token.cfg)
        z_rollout = _batched(token.encode, _frame_prefix(vla, held_out))
        report.update(goal_report(token, z_rollout, held_out, prefix="rollout_"))
        report["rollout_held_out_frames"] = float(len(held_out))
        step = max(1, len(fit_rollout) // ROLLOUT_PROBE_FRAMES)  # a probe needs thousands of frames, not all
        fit_rollout = fit_rollout.subset(np.arange(0, len(fit_rollout), step))
        z_fit_rollout = _batched(token.encode, _frame_prefix(vla, fit_rollout))
        probe = probe_report(z_fit_rollout.numpy(), z_rollout.numpy(), fit_rollout, held_out, token.cfg.probe_ridge)
        report.update({f"rollout_{k}": v for k, v in probe.items()})
    if verbose:
        print(format_diagnosis(report))
    return report


def goal_report(token: RlToken, z_rl: Tensor, frames: Frames, prefix: str = "") -> dict[str, float]:
    """RMS error (physical units) of the token's goal entries on the frames of successful episodes, per goal axis:
    <prefix>goal_rmse_<proprio index> over all of them and <prefix>goal_near_rmse_<proprio index> near the hole;
    {} without a goal.
    """
    if not token.goal_dims:
        return {}
    error = (token.goal(z_rl) - _goal_targets(token, frames) * token.goal_scale).numpy()  # float32[N, G], NaN: failed
    near = np.hypot(frames.tip_offset[:, 0], frames.tip_offset[:, 1]) <= NEAR_RADIUS  # bool[N]
    report = {}
    for subset, keep in (("", frames.success), ("near_", frames.success & near)):
        rmse = np.sqrt((error[keep] ** 2).mean(0)) if keep.any() else np.full(token.goal_dims, np.nan)
        report.update({f"{prefix}goal_{subset}rmse_{a}": float(v)
                       for a, v in zip(token.cfg.goal_axes, rmse, strict=True)})
    return report


def format_diagnosis(report: dict[str, float]) -> str:
    """Human-readable report of `diagnose_token`."""
    real, zero, shuffled = report["loss_real"], report["loss_zero"], report["loss_shuffled"]
    lines = [
        f"RL-token diagnostics on {int(report['held_out_frames'])} held-out frames",
        "  reconstruction loss (context dropout as in training; lower is better)",
        f"    real z_rl      {real:9.4f}",
        f"    zero z_rl      {zero:9.4f}   ({zero / real:.2f}x real)",
        f"    shuffled z_rl  {shuffled:9.4f}   ({shuffled / real:.2f}x real)",
        f"    real, no dropout {report['loss_teacher_forced']:7.4f}",
        f"    mean embedding {report['loss_mean_embedding']:9.4f}   (ignores the frame)",
        *probe_table(report, "z_rl"),
    ]
    goal = [k.removeprefix("goal_rmse_") for k in report if k.startswith("goal_rmse_")]
    if goal:
        rollouts = "rollout_held_out_frames" in report
        lines.append("  goal entries of z_rl: RMS error of the displacement to the final pose, successful episodes")
        lines.append(f"    {'proprio':<8} {'all':>9} {'near':>9}" + (f"   {'base-policy rollouts':>20}" if rollouts
                                                                     else "") + "   (units of the proprio entry)")
        for a in goal:
            row = f"    [{a}]{'':<5} {report[f'goal_rmse_{a}']:9.5f} {report[f'goal_near_rmse_{a}']:9.5f}"
            if rollouts:
                row += f"   {report[f'rollout_goal_rmse_{a}']:9.5f} {report[f'rollout_goal_near_rmse_{a}']:9.5f}"
            lines.append(row)
        if rollouts:
            lines.append(f"    (rollouts: {int(report['rollout_held_out_frames'])} held-out frames of base-policy "
                         "episodes, with exploration noise)")
    if "rollout_probe_r2_x" in report:  # the states the RL actor starts from and explores, not the demos' aligned ones
        r = {k.removeprefix("rollout_"): v for k, v in report.items() if k.startswith("rollout_probe")}
        nan = float("nan")
        lines.append(f"  the same probe on base-policy rollouts ({int(report['rollout_held_out_frames'])} held-out "
                     f"frames): R² x {r['probe_r2_x']:.3f}, y {r['probe_r2_y']:.3f}, yaw {r['probe_r2_yaw']:.3f}; near "
                     f"the hole x {r.get('probe_near_r2_x', nan):.3f}, y {r.get('probe_near_r2_y', nan):.3f}, mean "
                     f"error x {r.get('probe_near_mae_x', nan) * 1e3:.2f} mm, "
                     f"y {r.get('probe_near_mae_y', nan) * 1e3:.2f} mm")
    return "\n".join(lines)


def vla_split_frames(vla_checkpoint: str | Path, demos: DemoSource) -> tuple[VlaConfig, Frames, dict[str, Any]]:
    """The VLA's config, the frames of `demos` filtered as its training was, and its episode split.

    Encoders trained on a frozen VLA's episodes (the RL token, the ablation's image features) use the VLA's
    split, so their held-out diagnostics run on episodes the VLA never saw either.
    """
    ckpt = load_checkpoint(vla_checkpoint, VLA_KIND)
    vla_cfg, split = VlaConfig.from_dict(ckpt["config"], source=str(vla_checkpoint)), ckpt["split"]
    del ckpt
    episodes = select_episodes(demos, split["successes_only"])
    if len(episodes) != split["n_episodes"]:
        raise ValueError(f"the demos have {len(episodes)} episodes, the VLA {vla_checkpoint} was trained on "
                         f"{split['n_episodes']}: use the same demonstrations")
    return vla_cfg, _vla_frames(episodes, vla_cfg, "demonstration"), split


def rollout_split_frames(rollouts: DemoSource, vla_cfg: VlaConfig, cfg: TokenConfig) -> tuple[Frames, Frames]:
    """(training, held-out) frames of base-policy rollouts (`rlt.sim.demos.record_rollouts`), every episode, split
    by episode with the token's holdout fraction and seed."""
    episodes = select_episodes(rollouts, successes_only=False)
    frames = _vla_frames(episodes, vla_cfg, "rollout")
    train, held_out = split_episodes(len(episodes), cfg.holdout_fraction, cfg.seed)
    return frames.of_episodes(train), frames.of_episodes(held_out)


def _vla_frames(episodes: list[Any], vla_cfg: VlaConfig, what: str) -> Frames:
    frames = frames_from_episodes(episodes, vla_cfg.cameras, vla_cfg.chunk_len)
    size = frames.images.shape[2:4]
    if size != (vla_cfg.image_size, vla_cfg.image_size):
        raise ValueError(f"{what} images are {size[0]}x{size[1]} px; the VLA's image_size is {vla_cfg.image_size}")
    return frames


def held_out_frames(encoder_checkpoint: str | Path, kind: str, vla_checkpoint: str | Path | None,
                    demos: DemoSource | None) -> tuple[str | Path, VlaConfig, Frames, Frames]:
    """(VLA checkpoint, its config, training frames, held-out frames) for diagnosing an encoder checkpoint.

    The VLA checkpoint and demos default to those the encoder was trained with.
    """
    ckpt = load_checkpoint(encoder_checkpoint, kind)
    vla_checkpoint = vla_checkpoint or ckpt["vla_checkpoint"]
    demos = demos if demos is not None else ckpt["demos"]
    if not demos:
        raise ValueError(f"{encoder_checkpoint} was trained on in-memory demos; pass `demos`")
    vla_cfg, frames, split = vla_split_frames(vla_checkpoint, demos)
    fit_frames, test_frames = frames.of_episodes(split["train"]), frames.of_episodes(split["holdout"])
    if len(test_frames) == 0:
        raise ValueError(f"{vla_checkpoint} has no held-out episodes (VlaTrainConfig.holdout_fraction=0)")
    return vla_checkpoint, vla_cfg, fit_frames, test_frames


def _frame_prefix(vla: Vla, frames: Frames) -> Tensor:
    return prefix_embeddings(vla, torch.from_numpy(frames.images), torch.from_numpy(frames.proprio))


def _batched(fn: Any, x: Tensor, batch_size: int = 512) -> Tensor:
    return torch.cat([fn(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])


def _recon(token: RlToken, prefix: Tensor, z_rl: Tensor, context_dropout: float, seed: int,
           batch_size: int = 512) -> float:
    """Mean reconstruction loss over all frames; the dropout masks depend only on `seed` (same for any z_rl)."""
    generator = torch.Generator().manual_seed(seed)
    total = 0.0
    for i in range(0, len(prefix), batch_size):
        s = slice(i, i + batch_size)
        total += token.loss(prefix[s], z_rl[s], context_dropout, generator).item() * len(prefix[s])
    return total / len(prefix)
