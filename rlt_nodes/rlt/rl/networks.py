"""The actor μθ(x, ã) and the twin critic Q1, Q2(x, a) of RLT, built from sizes only (never from an environment).

This module owns the architectures, their parameter names and shapes (what travels in PolicyWeights),
initialization, and the hand-written forward/backward passes the TD3 update runs without autograd. Both networks
are `MLPEnsemble`s over one flat parameter buffer: build a network on its device (`.to()` raises).

Why one ensemble, flat buffers and no LayerNorm, with the measurements: docs/models.md, section `rlt.rl.networks`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn


def resolve_device(name: str) -> torch.device:
    """`RLConfig.device` -> torch.device: "auto" picks cuda when available."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("RLConfig.device='cuda' but torch sees no CUDA device; use 'cpu' or 'auto'")
    return torch.device(name)


class MLPEnsemble(nn.Module):
    """E independent MLPs with ReLU hidden layers, optionally tanh-squashed outputs.

    Layer k holds `w{k}`: float32[E, out_k, in_k] (the `nn.Linear` layout) and `b{k}`: float32[E, 1, out_k],
    initialized like `nn.Linear` (uniform ±1/sqrt(in_k)). The [out, in] layout keeps the matmuls of a 1-wide
    output layer on MKL's fast path (the [in, out] layout slows its weight gradient; docs/models.md).
    `flat` is float32[N] holding all parameters; `flat_grad` holds their gradients and is what the optimizer reads
    (it is never zeroed: the hand-written backward overwrites it).
    """

    def __init__(
        self,
        members: int,
        in_dim: int,
        hidden: Sequence[int],
        out_dim: int,
        *,
        squash: bool,
        device: torch.device | str = "cpu",
        seed: int = 0,
    ) -> None:
        super().__init__()
        if members < 1 or in_dim < 1 or out_dim < 1 or not hidden or min(hidden) < 1:
            raise ValueError(f"MLPEnsemble: sizes must be >= 1, got members={members} in_dim={in_dim} "
                             f"hidden={tuple(hidden)} out_dim={out_dim}")
        self.members, self.in_dim, self.out_dim, self.squash = members, in_dim, out_dim, squash
        self.hidden = tuple(int(h) for h in hidden)
        self.layer_dims = list(itertools.pairwise([in_dim, *self.hidden, out_dim]))  # (in_k, out_k) per layer
        shapes: dict[str, tuple[int, ...]] = {}
        for k, (fan_in, fan_out) in enumerate(self.layer_dims):
            shapes[f"w{k}"] = (members, fan_out, fan_in)
            shapes[f"b{k}"] = (members, 1, fan_out)
        total = sum(math.prod(s) for s in shapes.values())
        self.flat = torch.zeros(total, device=device)  # float32[N], all parameters
        self.flat_grad = torch.zeros(total, device=device)  # float32[N], their gradients
        self.flat.grad = self.flat_grad
        offset = 0
        grads: dict[str, Tensor] = {}
        for name, shape in shapes.items():
            size = math.prod(shape)
            param = nn.Parameter(self.flat[offset : offset + size].view(shape))
            param.grad = grads[name] = self.flat_grad[offset : offset + size].view(shape)
            self.register_parameter(name, param)
            offset += size
        self.num_layers = len(self.layer_dims)
        self.weights = [getattr(self, f"w{k}") for k in range(self.num_layers)]
        self.biases = [getattr(self, f"b{k}") for k in range(self.num_layers)]
        self.weight_grads = [grads[f"w{k}"] for k in range(self.num_layers)]
        self.bias_grads = [grads[f"b{k}"] for k in range(self.num_layers)]
        self.reset_parameters(seed)

    def reset_parameters(self, seed: int) -> None:
        gen = torch.Generator(device=self.flat.device).manual_seed(seed)
        with torch.no_grad():
            for w, b in zip(self.weights, self.biases, strict=True):
                bound = 1.0 / math.sqrt(w.shape[2])
                w.uniform_(-bound, bound, generator=gen)
                b.uniform_(-bound, bound, generator=gen)

    def _apply(self, fn: Callable[..., Any], recurse: bool = True) -> MLPEnsemble:
        raise NotImplementedError(f"{type(self).__name__}: parameters are views of one flat buffer; build the "
                                  "network on its device instead of moving or casting it")

    # ------------------------------------------------------------------ passes
    def trace(self, inputs: Tensor, member: int | None = None) -> list[Tensor]:
        """Forward pass keeping every layer's output for `backward`.

        inputs: float32[B, in] shared by all members (or float32[E, B, in]). `member` evaluates only that member.
        Returns [inputs as float32[E', B, in], hidden_1, ..., output float32[E', B, out]] (E' = 1 with `member`).
        Works under autograd and under `torch.no_grad()`.
        """
        ws, bs = self._select(member)
        e = ws[0].shape[0]
        h = inputs if inputs.dim() == 3 else inputs.expand(e, *inputs.shape)
        outputs = [h]
        for k, (w, b) in enumerate(zip(ws, bs, strict=True)):
            h = torch.baddbmm(b, h, w.transpose(1, 2))
            if k < self.num_layers - 1:
                h = h.relu_()
            elif self.squash:
                h = h.tanh_()
            outputs.append(h)
        return outputs

    def backward(
        self,
        outputs: list[Tensor],
        grad: Tensor,
        *,
        member: int | None = None,
        weight_grads: bool = True,
        input_cols: slice | None = None,
    ) -> Tensor | None:
        """Hand-written backward pass through a `trace` (no autograd; call under `torch.no_grad()`).

        grad: float32[E', B, out], dL/d(last pre-activation): the caller applies the tanh derivative.
        weight_grads: overwrite `flat_grad` with dL/dθ (needs all members). input_cols: also return dL/d inputs for
        those input columns, float32[E', B, len(cols)]; the first layer's input gradient is skipped otherwise.
        """
        if weight_grads and member is not None:
            raise ValueError("MLPEnsemble.backward: weight gradients need all members (member=None)")
        ws, _ = self._select(member)
        for k in range(self.num_layers - 1, -1, -1):
            if weight_grads:
                torch.bmm(grad.transpose(1, 2), outputs[k], out=self.weight_grads[k])
                torch.sum(grad, dim=1, keepdim=True, out=self.bias_grads[k])
            if k > 0:
                grad = torch.ops.aten.threshold_backward(torch.bmm(grad, ws[k]), outputs[k], 0.0)
        if input_cols is None:
            return None
        return torch.bmm(grad, ws[0][:, :, input_cols])

    def _select(self, member: int | None) -> tuple[list[Tensor], list[Tensor]]:
        if member is None:
            return self.weights, self.biases
        if not 0 <= member < self.members:
            raise ValueError(f"member={member}: expected 0..{self.members - 1}")
        pick = slice(member, member + 1)
        return [w[pick] for w in self.weights], [b[pick] for b in self.biases]

    # ------------------------------------------------------------------ weights as plain arrays
    def copy_from(self, other: MLPEnsemble) -> None:
        with torch.no_grad():
            self.flat.copy_(other.flat)

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {name: tuple(p.shape) for name, p in self.named_parameters()}

    def arrays(self) -> dict[str, np.ndarray]:
        """Parameters as float32 numpy copies, by name (what a PolicyWeights message carries)."""
        return {name: p.detach().cpu().numpy().copy() for name, p in self.named_parameters()}

    def check_arrays(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Raise ValueError unless `arrays` has exactly this network's parameter names and shapes."""
        what = type(self).__name__
        expected = self.shapes()
        missing, unexpected = sorted(set(expected) - set(arrays)), sorted(set(arrays) - set(expected))
        if missing or unexpected:
            raise ValueError(f"{what} weights: missing {missing}, unexpected {unexpected}; expected names "
                             f"{sorted(expected)}")
        for name, shape in expected.items():
            got = tuple(np.shape(arrays[name]))
            if got != shape:
                raise ValueError(f"{what} weights[{name!r}]: expected shape {list(shape)}, got {list(got)}")

    def load_arrays(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Copy named float32 arrays into the parameters after `check_arrays`."""
        self.check_arrays(arrays)
        with torch.no_grad():
            for name, p in self.named_parameters():
                p.copy_(torch.as_tensor(np.asarray(arrays[name], np.float32)))


class Actor(MLPEnsemble):
    """μθ(x, ã): the full action chunk (not a residual), tanh-bounded in normalized units.

    Input row: [x (state_dim) | ã flattened row-major (C·D, only when use_reference)]. Parameters: one member
    (`w{k}`: float32[1, out_k, in_k]).
    """

    def __init__(
        self,
        state_dim: int,
        chunk_len: int,
        action_dim: int,
        hidden: Sequence[int],
        use_reference: bool = True,
        *,
        device: torch.device | str = "cpu",
        seed: int = 0,
    ) -> None:
        chunk = chunk_len * action_dim
        in_dim = state_dim + (chunk if use_reference else 0)
        super().__init__(1, in_dim, hidden, chunk, squash=True, device=device, seed=seed)
        self.state_dim, self.chunk_len, self.action_dim = state_dim, chunk_len, action_dim
        self.use_reference = use_reference

    def architecture(self) -> dict[str, Any]:
        """Sizes that must match between a weight snapshot's sender and receiver."""
        return {
            "network": "Actor",
            "state_dim": self.state_dim,
            "chunk_len": self.chunk_len,
            "action_dim": self.action_dim,
            "hidden": list(self.hidden),
            "use_reference": self.use_reference,
        }

    def inputs(self, x: Tensor, ref: Tensor) -> Tensor:
        """x float32[B, S], ref float32[B, C, D] -> actor input float32[B, in]."""
        return torch.cat([x, ref.flatten(1)], 1) if self.use_reference else x

    def forward(self, x: Tensor, ref: Tensor) -> Tensor:
        """x float32[B, S], ref float32[B, C, D] -> μ float32[B, C, D] in [-1, 1]."""
        return self.trace(self.inputs(x, ref))[-1][0].view(-1, self.chunk_len, self.action_dim)

    def act_on(self, inputs: Tensor, sigma: float = 0.0, generator: torch.Generator | None = None) -> Tensor:
        """inputs float32[B, in] -> μ + σε clipped to [-1, 1] as float32[B, C·D] (the mean when sigma == 0)."""
        mu = self.trace(inputs)[-1][0]
        if sigma > 0:
            mu = mu.add_(torch.randn(mu.shape, device=mu.device, generator=generator), alpha=sigma).clamp_(-1.0, 1.0)
        return mu


class TwinCritic(MLPEnsemble):
    """Q1, Q2(x, a) over the whole chunk, as one ensemble of two members.

    Input row: [a flattened row-major (C·D) | x (state_dim)]: the action comes first, so the replay buffer can hand
    the critic one contiguous slice of a stored row.
    """

    def __init__(
        self,
        state_dim: int,
        chunk_len: int,
        action_dim: int,
        hidden: Sequence[int],
        *,
        device: torch.device | str = "cpu",
        seed: int = 0,
    ) -> None:
        super().__init__(2, chunk_len * action_dim + state_dim, hidden, 1, squash=False, device=device, seed=seed)
        self.state_dim, self.chunk_len, self.action_dim = state_dim, chunk_len, action_dim

    @property
    def action_cols(self) -> slice:
        """Columns of the critic input that hold the action chunk."""
        return slice(0, self.chunk_len * self.action_dim)

    def inputs(self, x: Tensor, a: Tensor) -> Tensor:
        """x float32[B, S], a float32[B, C, D] (or [B, C·D]) -> critic input float32[B, C·D + S]."""
        return torch.cat([a.flatten(1), x], 1)

    def forward(self, x: Tensor, a: Tensor) -> Tensor:
        """x float32[B, S], a float32[B, C, D] -> (Q1, Q2) as float32[2, B]."""
        return self.trace(self.inputs(x, a))[-1][..., 0]
