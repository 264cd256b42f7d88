"""``recompute`` in every family whose blocks ``BlockStack`` did not already cover (multiscale encoders, their
decoders, XCiT's class attention, the MAE decoder): every policy gives the ``none`` policy's gradients and state
(batch-norm statistics included), and ``full`` keeps fewer activation bytes for the backward than ``none``.
The timesformer / UNETR cases and the MemTracker peaks per policy are in ``tests/layers/test_recompute.py``."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from spatiotemporal import create_model
from spatiotemporal.cli.main import main
from spatiotemporal.layers.recompute import RECOMPUTE_POLICIES
from spatiotemporal.models.videomae import VideoMAEPretrainer


def _randn(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(1))


def _classify(out: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(out, torch.arange(out.shape[0]) % out.shape[1])


def _segment(out: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(out, torch.arange(out[:, 0].numel()).view_as(out[:, 0]) % out.shape[1])


def _mae(policy: str):
    enc = create_model("videomae_tiny", embed_dim=32, depth=2, num_heads=4, drop_path_rate=0.1, recompute=policy)
    return VideoMAEPretrainer(enc, decoder_dim=32, decoder_depth=2, decoder_heads=4)


MIT_SMALL = dict(embed_dims=(8, 16, 24, 32), depths=(1, 2, 1, 1), num_heads=(1, 2, 3, 4), drop_path_rate=0.1)

#: family -> (model for a policy, inputs, loss of the output); tiny sizes, drop path on where the family has it
CASES = {
    "mvit": (lambda p: create_model("mvit_tiny", num_frames=4, drop_path_rate=0.1, recompute=p),
             lambda: (_randn(2, 3, 4, 32, 32),), _classify),
    "mvit_image_joint": (lambda p: create_model("mvit_image_builtin", mixer=("pooling", "joint", "joint"),
                                                drop_path_rate=0.1, recompute=p),
                         lambda: (_randn(2, 3, 32, 32),), _classify),
    "mvit_unetr": (lambda p: create_model("mvit_unetr_tiny", img_size=(32, 32, 32), drop_path_rate=0.1,
                                          recompute=p),
                   lambda: (_randn(1, 1, 32, 32, 32),), _segment),
    "mit": (lambda p: create_model("mit", img_size=32, num_classes=5, recompute=p, **MIT_SMALL),
            lambda: (_randn(2, 3, 32, 32),), _classify),
    "segformer": (lambda p: create_model("segformer_b0", img_size=(32, 32), num_classes=3, decoder_dim=16,
                                         recompute=p, **MIT_SMALL),
                  lambda: (_randn(2, 3, 32, 32),), _segment),
    "segformer3d": (lambda p: create_model("segformer3d_b0", img_size=(16, 16, 16), in_chans=2, num_classes=3,
                                           decoder_dim=16, recompute=p, **MIT_SMALL),
                    lambda: (_randn(1, 2, 16, 16, 16),), _segment),
    "xcit": (lambda p: create_model("xcit_tiny_builtin", embed_dim=32, depth=2, drop_path_rate=0.1, recompute=p),
             lambda: (_randn(2, 3, 32, 32),), _classify),
    "mlp_mixer": (lambda p: create_model("mixer_tiny_builtin", embed_dim=32, depth=2, drop_path_rate=0.1,
                                         recompute=p),
                  lambda: (_randn(2, 3, 32, 32),), _classify),
    "convmixer": (lambda p: create_model("convmixer_tiny_builtin", dim=16, depth=2, drop_path_rate=0.1,
                                         recompute=p),
                  lambda: (_randn(2, 3, 32, 32),), _classify),
    "videomae": (lambda p: create_model("videomae_tiny", embed_dim=32, depth=2, num_heads=4, drop_path_rate=0.1,
                                        recompute=p),
                 lambda: (_randn(2, 3, 8, 32, 32),), _classify),
    "videomae_pretrain": (_mae, lambda: (_randn(2, 3, 8, 32, 32), torch.tensor([[0, 3, 5], [1, 2, 15]])),
                          lambda out: out.square().mean()),
}


def saved_activation_bytes(model: torch.nn.Module, inputs: tuple, loss_fn) -> tuple[torch.Tensor, int]:
    """The loss and the bytes of the distinct storages autograd saves for the backward, parameters and buffers
    left out. Tensors a selective policy keeps are held by its own cache, not saved through these hooks, so the
    count is exact for ``none`` and ``full`` only."""
    own = {t.untyped_storage().data_ptr() for t in (*model.parameters(), *model.buffers())}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        s = t.untyped_storage()
        if s.data_ptr() not in own:
            seen[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = loss_fn(model(*inputs))
    return loss, sum(seen.values())


def _step(family: str, policy: str, state: dict | None) -> tuple[dict, dict, int]:
    build, inputs, loss_fn = CASES[family]
    torch.manual_seed(0)
    model = build(policy).train()
    if state is None:
        with torch.no_grad():  # no zero-initialised head or LayerScale: every weight takes part in the gradients
            for p in model.parameters():
                p.add_(torch.randn_like(p), alpha=0.02)
    else:
        model.load_state_dict(state)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(2)  # the same drop-path draws in every run (checkpointing replays them)
    loss, kept = saved_activation_bytes(model, inputs(), loss_fn)
    loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}  # MAE: no classifier grads
    return start, {"grads": grads, "state": model.state_dict()}, kept


@pytest.mark.parametrize("family", list(CASES))
def test_every_policy_gives_the_same_step_and_full_keeps_less(family):
    start, ref, kept_none = _step(family, "none", None)
    kept = {"none": kept_none}
    for policy in RECOMPUTE_POLICIES[1:]:
        _, got, kept[policy] = _step(family, policy, start)
        assert got["grads"].keys() == ref["grads"].keys()
        for kind in ("grads", "state"):  # state: batch-norm running statistics are updated once, as under none
            for name, v in got[kind].items():
                torch.testing.assert_close(v, ref[kind][name], atol=1e-6, rtol=1e-5,
                                           msg=f"{family} {policy}: {kind} {name}")
    assert kept["full"] < kept["none"], kept


@pytest.mark.parametrize("family", ["mvit", "segformer", "xcit", "convmixer"])
def test_recompute_is_no_weight_and_checked(family):
    build = CASES[family][0]
    assert list(build("full").state_dict()) == list(build("none").state_dict())
    with pytest.raises(ValueError, match="recompute must be one of none, pointwise, projections, full, got 'half'"):
        build("half")


@pytest.mark.parametrize("family", ["mvit", "mvit_image", "mvit_unetr", "segformer", "segformer3d", "xcit",
                                    "mlp_mixer", "convmixer", "videomae"])
def test_a_bad_recipe_override_is_one_line(tmp_path, capsys, family):
    """The override reaches every family's config; a good one trains in ``tests/cli/test_cli_mvit.py`` (``full``)
    and ``tests/pipelines/test_segmentation_families.py`` (SegFormer, ``pointwise``)."""
    out = tmp_path / "run"
    capsys.readouterr()
    assert main(["train", family, "--out", str(out), "--max-steps", "1", "--epochs", "1", "--workers", "0",
                 "model.overrides.recompute=half"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"spatio train: error: cannot build a {family} model with this config: recompute must be one "
                   "of none, pointwise, projections, full, got 'half'"), err
    assert not out.exists()
