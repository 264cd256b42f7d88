"""The multiscale trunk shared by the MViT families (video and image classifiers, the volume segmenter)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from timm.layers import trunc_normal_
from torch import nn

from ..layers import (
    Block,
    MultiScaleBlock,
    MultiStageEncoder,
    PatchEmbed2d,
    PatchEmbed3d,
    PooledSkip,
    Stage,
    StageOutput,
    init_weights_,
    resize_pos_embed_2d,
    resize_time_embed,
    stage_layout,
    strided_grid,
)
from ..layers.grid import Grid
from ..layers.stage import per_axis
from .base import SpatioModel
from .encoder import drop_path_rates
from .intermediates import Intermediate, stage_block_names, stage_intermediates
from .validate import check_config

POOLING = "pooling"


@dataclass
class MViTEncoderConfig:
    """The multiscale trunk; every MViT model config extends it. Defaults: MViTv2-S (torchvision ``mvit_v2_s``).

    Stage ``i`` has ``depths[i]`` blocks of width ``embed_dim * 2**i`` with ``num_heads * 2**i`` heads. The first
    block of every later stage strides its queries by ``stride_q`` (one value per grid axis); the KV stride starts
    at ``stride_kv`` and is divided by ``stride_q`` at each such block, never below 1 (MViTv2's adaptive KV stride).
    ``kernel_q`` pools the queries of every block (MViTv2) or only of the strided ones
    (``pool_q_every_block=False``, MViT v1). ``expand_attn``: the width grows in the attention of a stage's first
    block (MViTv2) or in the MLP of the previous stage's last block (v1). ``pool_norm_eps``: the eps of the
    LayerNorms after pooling (None: ``norm_eps``; pytorchvideo uses 1e-5). ``abs_pos``: separable absolute
    positions (``pos_embed_spatial`` over the last two grid axes, ``pos_embed_temporal`` over the first,
    ``pos_embed_class``), MViT v1's.

    ``mixer``: ``"pooling"`` (MViT's pooling attention) or any registered mixer, for every stage or per stage
    (a tuple). A stage with a grid-keeping mixer is downsampled first by MViT's pooled skip path
    (:class:`~spatiotemporal.layers.PooledSkip`: projection to the stage width, max-pool by ``stride_q``), then
    runs plain blocks. ``mixer_kwargs`` go to every stage's mixer (pooling: on top of the options set here).

    ``recompute``: activation checkpointing in training (:mod:`spatiotemporal.layers.recompute`), per block and
    per pooled-skip downsampling of a stage; the patch embedding (the stem) is not recomputed.
    """

    in_chans: int = 3
    patch_kernel: tuple = (3, 7, 7)
    patch_stride: tuple = (2, 4, 4)
    embed_dim: int = 96
    num_heads: int = 1
    depths: tuple = (1, 2, 11, 2)
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    norm_eps: float = 1e-6
    pool_norm_eps: float | None = None
    kernel_q: tuple = (3, 3, 3)
    kernel_kv: tuple = (3, 3, 3)
    stride_q: tuple = (1, 2, 2)
    stride_kv: tuple = (1, 8, 8)
    pool_q_every_block: bool = True
    expand_attn: bool = True
    residual_pool: bool = True
    residual_pool_prefix: bool = False
    rel_pos: bool = True
    abs_pos: bool = False
    class_token: bool = True
    drop_path_rate: float = 0.2
    mixer: str | tuple = POOLING
    mixer_kwargs: dict = field(default_factory=dict)
    pos_interp: str = "bicubic"  # abs_pos at another input size
    recompute: str = "none"  # activation checkpointing per stage unit: none | pointwise | projections | full

    def __post_init__(self) -> None:
        check_config(self, heads=(("embed_dim", "num_heads"),))


def stage_mixers(cfg: MViTEncoderConfig) -> tuple[str, ...]:
    """The mixer of each stage."""
    n = len(cfg.depths)
    mixers = (cfg.mixer,) * n if isinstance(cfg.mixer, str) else tuple(cfg.mixer)
    if len(mixers) != n:
        raise ValueError(f"mixer gives {len(mixers)} stage mixers {mixers} for {n} stages (depths {cfg.depths})")
    return mixers


def kv_strides(cfg: MViTEncoderConfig) -> list[tuple[int, int, int]]:
    """The adaptive KV stride of each stage."""
    kv, out = per_axis(cfg.stride_kv, 3, "stride_kv"), []
    for i in range(len(cfg.depths)):
        if i:
            kv = tuple(max(a // b, 1) for a, b in zip(kv, per_axis(cfg.stride_q, 3, "stride_q")))
        out.append(kv)
    return out


class MViTTrunk(SpatioModel):
    """Overlapping conv patch embedding -> optional class token and absolute positions -> multiscale stages.

    ``axes`` is the grid layout's axis names (``("t", "h", "w")``, ``("1", "h", "w")``, ``("h", "w", "d")``),
    ``input_size`` the native input (``(T, H, W)``, ``(H, W)``, ``(H, W, D)``). The patch embedding is 2D on images
    and 3D otherwise; ``patch_kernel`` / ``patch_stride`` have as many values. Parameters: ``patch_embed``,
    ``cls_token``, ``pos_embed_*``, ``encoder.stages.{i}.blocks.{j}`` (``encoder.stages.{i}.downsample`` for
    grid-keeping mixers).
    """

    def __init__(self, cfg: MViTEncoderConfig, axes: tuple[str, str, str], input_size: tuple[int, ...]):
        super().__init__()
        self.cfg = cfg
        image = axes[0] == "1"
        ndim = 2 if image else 3
        kernel = per_axis(cfg.patch_kernel, ndim, f"patch_kernel of a {ndim}D patch embedding:")
        stride = per_axis(cfg.patch_stride, ndim, f"patch_stride of a {ndim}D patch embedding:")
        embed = PatchEmbed2d if image else PatchEmbed3d
        self.patch_embed = embed(kernel, cfg.in_chans, cfg.embed_dim, stride=stride,
                                 padding=tuple(k // 2 for k in kernel))
        pixels = (1, *input_size) if image else tuple(input_size)
        self.grid_size = strided_grid(pixels, (1,) * image + kernel, (1,) * image + stride)
        self.num_prefix = int(cfg.class_token)
        d = cfg.embed_dim
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d)) if cfg.class_token else None
        if cfg.abs_pos:
            g0, g1, g2 = self.grid_size
            self.pos_embed_spatial = nn.Parameter(torch.zeros(1, g1 * g2, d))
            self.pos_embed_temporal = nn.Parameter(torch.zeros(1, g0, d))
            self.pos_embed_class = nn.Parameter(torch.zeros(1, 1, d)) if cfg.class_token else None
        self.encoder, self.stage_grids, self.stage_dims, self.stage_heads = self._build_stages(cfg, axes)
        self.num_features = self.stage_dims[-1]

    def _build_stages(self, cfg: MViTEncoderConfig, axes) -> tuple[MultiStageEncoder, list, list, list]:
        n = len(cfg.depths)
        widths = [cfg.embed_dim * 2**i for i in range(n)]
        heads = [cfg.num_heads * 2**i for i in range(n)]
        dpr = iter(drop_path_rates(cfg.drop_path_rate, sum(cfg.depths)))
        grid, dim, stages, grids, dims = self.grid_size, cfg.embed_dim, [], [], []
        common = dict(mlp_ratio=cfg.mlp_ratio, qkv_bias=cfg.qkv_bias, norm_eps=cfg.norm_eps)
        for i, (depth, mixer, kv) in enumerate(zip(cfg.depths, stage_mixers(cfg), kv_strides(cfg))):
            stride_q = per_axis(cfg.stride_q, 3, "stride_q") if i else (1, 1, 1)
            if mixer == POOLING:
                blocks = []
                for j in range(depth):
                    widen_mlp = not cfg.expand_attn and j == depth - 1 and i < n - 1
                    dim_out = widths[i + 1] if widen_mlp else widths[i]
                    strided = i > 0 and j == 0
                    kw = dict(kernel_q=cfg.kernel_q if cfg.pool_q_every_block or strided else 1,
                              kernel_kv=cfg.kernel_kv, stride_kv=kv, residual_pool=cfg.residual_pool,
                              residual_pool_prefix=cfg.residual_pool_prefix, rel_pos=cfg.rel_pos,
                              pool_norm_eps=cfg.pool_norm_eps)
                    blk = MultiScaleBlock(dim, dim_out, num_heads=heads[i], layout=stage_layout(axes, grid),
                                          stride_q=stride_q if strided else 1, expand_attn=cfg.expand_attn,
                                          mixer_kwargs={**kw, **cfg.mixer_kwargs}, drop_path=next(dpr), **common)
                    blocks.append(blk)
                    grid, dim = blk.mixer.out_grid(grid), dim_out
                stages.append(Stage(blocks))
            else:
                down = PooledSkip(dim, widths[i], stride_q) if (i or dim != widths[i]) else None
                grid, dim = (down.out_grid(grid) if down is not None else grid), widths[i]
                blocks = [Block(dim, num_heads=heads[i], layout=stage_layout(axes, grid), mixer=mixer,
                                mixer_kwargs=cfg.mixer_kwargs, drop_path=next(dpr), **common) for _ in range(depth)]
                stages.append(Stage(blocks, down))
            grids.append(grid)
            dims.append(dim)
        return MultiStageEncoder(stages, cfg.recompute), grids, dims, heads

    def init_trunk(self, *heads: nn.Module) -> None:
        """timm's rule on the linear layers of the stages and ``heads`` (then each mixer's hook); embeddings
        trunc-normal 0.02, as torchvision and pytorchvideo."""
        for m in (self.encoder, *heads):
            init_weights_(m)
        for p in (self.cls_token, getattr(self, "pos_embed_spatial", None), getattr(self, "pos_embed_temporal", None),
                  getattr(self, "pos_embed_class", None)):
            if p is not None:
                trunc_normal_(p, std=0.02)

    @property
    def own_no_weight_decay(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.named_parameters() if n == "cls_token" or n.startswith("pos_embed_"))

    def embed(self, x: torch.Tensor) -> tuple[torch.Tensor, Grid]:
        """Pixels -> tokens ``(B, P+N, D)`` (class token and absolute positions added) and their grid."""
        tokens, grid = self.patch_embed(x)
        if self.cfg.abs_pos:
            g0, g1, g2 = grid
            n0, n1, n2 = self.grid_size
            spatial = resize_pos_embed_2d(self.pos_embed_spatial, (n1, n2), (g1, g2), 0, self.cfg.pos_interp)
            temporal = resize_time_embed(self.pos_embed_temporal, g0)
            tokens = tokens + (temporal[:, :, None] + spatial[:, None]).flatten(1, 2)
        if self.cls_token is not None:
            cls = self.cls_token if not self.cfg.abs_pos else self.cls_token + self.pos_embed_class
            tokens = torch.cat([cls.expand(tokens.shape[0], -1, -1), tokens], dim=1)
        return tokens, grid

    def intermediate_names(self) -> list[str]:
        """``stage1..stageN``: the encoder stages (their last block's output, before the final norm)."""
        return [f"stage{i + 1}" for i in range(len(self.encoder.stages))]

    def intermediates(self, x: torch.Tensor, names: list[str]) -> list[Intermediate]:
        """The named stages of :meth:`forward_stages` (or blocks inside them)."""
        return stage_intermediates(self.encoder, lambda: self.forward_stages(x), names, self.num_prefix)

    def inner_intermediate_names(self) -> list[str]:
        """``stage{i}.{j}``: block ``j`` of stage ``i``."""
        return stage_block_names(self.encoder)

    def forward_stages(self, x: torch.Tensor) -> list[StageOutput]:
        """Pixels -> every stage's tokens ``(B, P+N_i, D_i)`` and grid."""
        tokens, grid = self.embed(x)
        return self.encoder(tokens, grid, self.num_prefix)

    def resize_state_dict(self, sd: dict[str, torch.Tensor], src_cfg: dict, name: str) -> None:
        """Relative-position tables to this model's lengths (linear, as timm); absolute positions to its grid."""
        own = self.state_dict()
        for k, v in list(sd.items()):
            if ".rel_pos_" in k and k in own and v.shape[0] != own[k].shape[0]:
                sd[k] = nn.functional.interpolate(v.t()[None], size=own[k].shape[0], mode="linear")[0].t()
        n0, n1, n2 = self.grid_size
        te = sd.get("pos_embed_temporal")
        if te is not None and te.shape[1] != n0:
            sd["pos_embed_temporal"] = resize_time_embed(te, n0)
        pe = sd.get("pos_embed_spatial")
        if pe is not None and pe.shape[1] != n1 * n2:
            side = int(round(pe.shape[1] ** 0.5))
            if side * side != pe.shape[1]:
                raise ValueError(f"{name}: pos_embed_spatial has {pe.shape[1]} slots, not a square grid to resize")
            sd["pos_embed_spatial"] = resize_pos_embed_2d(pe, (side, side), (n1, n2), 0, self.cfg.pos_interp)
