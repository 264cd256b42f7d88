"""Masked-autoencoder pretraining of video models (VideoMAE): tube masking and pixel reconstruction, a task for
the engine. The model is a :class:`~spatiotemporal.models.VideoMAEPretrainer` (encoder on the visible tubes +
decoder); the loss is the MSE on the masked tubes' pixels, each tube normalised per channel (``norm_pix_loss``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ..engine import all_reduce_sum
from ..models.videomae import patchify
from ..utils.errors import UserInputError


@dataclass
class MaskedPretrainSection:
    """The pretraining part of a video recipe (``spatio pretrain``): VideoMAE's defaults are 90% tube masking and a
    4-block, 384-wide decoder."""

    mask_ratio: float = 0.9
    decoder_dim: int = 384
    decoder_depth: int = 4
    decoder_heads: int = 6
    norm_pix_loss: bool = True

    def __post_init__(self) -> None:
        if not 0.0 < self.mask_ratio < 1.0:  # 0 masks nothing: a loss over no token is NaN, not a divergence
            raise ValueError(f"pretrain.mask_ratio must be in (0, 1) (VideoMAE: 0.9), got {self.mask_ratio}")
        if self.decoder_dim < 1 or self.decoder_heads < 1 or self.decoder_depth < 1:
            raise ValueError(f"pretrain.decoder_dim, decoder_heads and decoder_depth must be >= 1, got "
                             f"{self.decoder_dim}, {self.decoder_heads}, {self.decoder_depth}")
        if self.decoder_dim % self.decoder_heads:
            raise ValueError(f"pretrain.decoder_dim {self.decoder_dim} is not divisible by pretrain.decoder_heads "
                             f"{self.decoder_heads}")


def check_masks_a_tube(section: MaskedPretrainSection, spatial: int, grid: str) -> None:
    """Refuse a ``mask_ratio`` that keeps every one of the ``spatial`` tube positions (``grid``, e.g. ``4x4``) in
    view: nothing would be reconstructed and the loss would be NaN."""
    if max(1, round(spatial * (1.0 - section.mask_ratio))) >= spatial:
        raise UserInputError(f"pretrain.mask_ratio={section.mask_ratio} masks none of the {spatial} tube positions of "
                         f"the {grid} grid; expected more than {0.5 / spatial:.3g} (VideoMAE: 0.9)")


def tube_mask(batch: int, spatial: int, ratio: float, device=None, generator: torch.Generator | None = None
              ) -> torch.Tensor:
    """Tube masking: the sorted indices ``(B, K)`` of the ``K = round(spatial * (1 - ratio))`` (>= 1) spatial
    positions each clip keeps, the same in every time step."""
    keep = max(1, round(spatial * (1.0 - ratio)))
    noise = torch.rand(batch, spatial, generator=generator, device=generator.device if generator else device)
    return noise.argsort(1)[:, :keep].sort(1).values.to(device)


def masked_tokens(keep: torch.Tensor, t: int, spatial: int) -> torch.Tensor:
    """``(B, T'*S)`` True where a token is masked (the complement of ``keep`` in every time step)."""
    mask = torch.ones(keep.shape[0], spatial, dtype=torch.bool, device=keep.device)
    mask.scatter_(1, keep, False)
    return mask[:, None, :].expand(-1, t, -1).reshape(keep.shape[0], t * spatial)


def pixel_targets(x: torch.Tensor, tubelet: int, patch: int, norm: bool = True) -> torch.Tensor:
    """``(B, C, T, H, W) -> (B, N, tubelet*patch*patch*C)``; ``norm``: each tube's values normalised per channel
    (mean 0, unbiased std 1), VideoMAE's ``norm_pix_loss``."""
    tubes = patchify(x.float(), tubelet, patch)  # (B, N, tp2, C)
    if norm:
        tubes = (tubes - tubes.mean(-2, keepdim=True)) / (tubes.var(-2, unbiased=True, keepdim=True).sqrt() + 1e-6)
    return tubes.flatten(2)


class MaskedVideoTask:
    """Engine task: batches ``{"video": (B, C, T, H, W) or (B, V, C, T, H, W), ...}``; the model is a
    ``VideoMAEPretrainer``. Evaluation reports ``loss`` (the reconstruction MSE with a fixed mask per batch)."""

    primary_metric = "loss"
    higher_is_better = False

    def __init__(self, section: MaskedPretrainSection, state: dict | None = None):
        self.section = section
        self.state = dict(state or {})

    def _loss(self, model, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        enc = getattr(model, "module", model).encoder_model
        c = enc.cfg
        t, h, w = x.shape[2] // c.tubelet_size, x.shape[3] // c.patch_size, x.shape[4] // c.patch_size
        keep = tube_mask(x.shape[0], h * w, self.section.mask_ratio, x.device, generator)
        pred = model(x, keep)
        target = pixel_targets(x, c.tubelet_size, c.patch_size, self.section.norm_pix_loss)
        mask = masked_tokens(keep, t, h * w)
        return F.mse_loss(pred.float()[mask], target[mask])

    def train_step(self, model: torch.nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, dict, int]:
        x = batch["video"]
        if x.shape[0] == 0:
            return sum(p.sum() * 0 for p in model.parameters()), {}, 0
        return self._loss(model, x), {}, int(x.shape[0])

    @torch.inference_mode()
    def evaluate(self, model: torch.nn.Module, loader: Iterable[dict[str, Any]]) -> dict[str, float]:
        device = next(model.parameters()).device
        sums = torch.zeros(2, dtype=torch.float64, device=device)
        gen = torch.Generator().manual_seed(0)
        for batch in loader:
            x = batch["video"]
            if x.ndim == 6:
                x = x[:, 0]
            if x.shape[0] == 0:
                continue
            keep_gen = torch.Generator().manual_seed(int(torch.randint(0, 2**31, (1,), generator=gen)))
            loss = self._loss(model, x, keep_gen)
            sums += torch.stack([loss.double() * x.shape[0], torch.tensor(float(x.shape[0]), device=device)])
        sums = all_reduce_sum(sums)
        return {"loss": float(sums[0] / sums[1].clamp(min=1)), "num_samples": float(sums[1])}

    def state_dict(self) -> dict:
        return dict(self.state)

    def load_state_dict(self, state: dict) -> None:
        self.state.update(state or {})
