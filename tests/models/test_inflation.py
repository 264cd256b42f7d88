"""2D ViT -> TimeSformer and -> UNETR inflation."""

import pytest
import timm
import torch
from testing_utils import randomize_

from spatiotemporal import create_model, load_pretrained
from spatiotemporal.models import inflate_patch_kernel, inflate_vit_to_timesformer, inflate_vit_to_unetr


def _our_vit():
    return randomize_(create_model("vit_tiny_builtin", num_classes=6)).eval()


def _timm_vit():
    ref = randomize_(timm.create_model("deit3_small_patch16_224", pretrained=False, img_size=64, num_classes=6))
    return load_pretrained(ref.state_dict())


@pytest.mark.parametrize("source", ["ours", "timm"])
@pytest.mark.parametrize("kw", [{"mixer": "divided"}, {"mixer": "space_only"}, {"mixer": "joint", "framewise": True}])
def test_static_clip_gives_the_vit_logits(source, kw):
    vit = _our_vit() if source == "ours" else _timm_vit()
    ts = inflate_vit_to_timesformer(vit, num_frames=4, **kw).eval()
    img = torch.randn(2, 3, 64, 64)
    clip = img.unsqueeze(2).expand(-1, -1, 4, -1, -1)
    with torch.no_grad():
        assert (ts(clip) - vit(img)).abs().max() <= 1e-5
    if kw["mixer"] == "divided":
        blk = ts.encoder.blocks[0].mixer
        assert torch.equal(blk.temporal_attn.qkv.weight, blk.attn.qkv.weight)
        assert blk.temporal_fc.weight.abs().max() == 0 and ts.time_embed.abs().max() == 0


def test_inflated_model_sees_order_once_time_embed_and_temporal_fc_move():
    vit = _our_vit()
    ts = inflate_vit_to_timesformer(vit, num_frames=4).eval()
    clip = torch.randn(1, 3, 4, 64, 64)
    torch.nn.init.normal_(ts.encoder.blocks[0].mixer.temporal_fc.weight, std=0.5)
    with torch.no_grad():  # attention is permutation-equivariant: without a time embedding order is invisible
        assert (ts(clip) - ts(clip.flip(2))).abs().max() <= 1e-5
    torch.nn.init.normal_(ts.time_embed, std=0.5)
    with torch.no_grad():
        assert (ts(clip) - ts(clip.flip(2))).abs().max() > 1e-4


@pytest.mark.parametrize("mode", ["average", "center"])
def test_equal_slices_give_the_2d_patch_embeddings(mode):
    vit = _our_vit()
    un = inflate_vit_to_unetr(vit, depth_mode=mode, img_size=(64, 64, 16), out_channels=3)
    torch.manual_seed(0)  # the input no longer depends on the tests run before (fp32 rounding reaches ~1e-5)
    sl = torch.randn(1, 1, 64, 64)
    vol = sl.unsqueeze(-1).expand(-1, -1, -1, -1, 16)  # (B, 1, H, W, D), every depth slice equal
    with torch.no_grad():
        tok3d, grid = un.patch_embed(vol)
        tok2d, _ = vit.patch_embed(sl.expand(-1, 3, -1, -1))  # the same gray slice as RGB
    assert grid == (8, 8, 2)
    tok3d = tok3d.reshape(1, 8, 8, 2, -1)
    for d in range(2):
        assert (tok3d[:, :, :, d].reshape(1, 64, -1) - tok2d).abs().max() <= 1e-5


def test_patch_kernel_channels():
    w = torch.randn(4, 3, 8, 8)
    k1 = inflate_patch_kernel(w, 1, 8, "center")
    assert k1.shape == (4, 1, 8, 8, 8) and torch.allclose(k1[..., 4], w.sum(1, keepdim=True))
    k2 = inflate_patch_kernel(w, 2, 8, "average")
    assert k2.shape == (4, 2, 8, 8, 8) and torch.allclose(k2.sum((1, -1)), w.sum(1), atol=1e-6)


def test_unetr_from_vit_trains_end_to_end():
    un = inflate_vit_to_unetr(_our_vit(), img_size=(32, 32, 16), out_channels=3)
    assert un.encoder.blocks[0].mixer.attn.qkv.bias is not None  # qkv bias of the ViT kept
    y = un(torch.randn(1, 1, 32, 32, 16))
    y.mean().backward()
    assert y.shape == (1, 3, 32, 32, 16)


def test_init_from_checkpoint_inflates_or_finetunes(tmp_path):
    from spatiotemporal import save_pretrained
    from spatiotemporal.models import init_from_checkpoint

    vit = _our_vit()
    path = save_pretrained(vit, tmp_path / "vit.safetensors")
    target = create_model("timesformer_tiny", num_frames=4, num_classes=3, mixer="divided", embed_dim=64)
    ts = init_from_checkpoint(target, path)  # the ViT's encoder shape wins over the target's
    assert ts.training and ts.cfg.embed_dim == 128 and ts.cfg.num_classes == 3 and ts.cfg.num_frames == 4
    torch.testing.assert_close(ts.encoder.blocks[0].mixer.temporal_attn.qkv.weight,
                               vit.encoder.blocks[0].mixer.attn.qkv.weight)
    same = init_from_checkpoint(create_model("vit_tiny_builtin", num_classes=4, img_size=48), path)
    assert same.head.out_features == 4 and same.pos_embed.shape[1] == 36  # head replaced, grid resized
    with pytest.raises(ValueError, match="cannot initialise a vit model"):
        init_from_checkpoint(create_model("vit_tiny_builtin"), save_pretrained(ts, tmp_path / "ts.safetensors"))


@pytest.mark.parametrize("pool", ["avg", "map"])
def test_gap_and_map_vits_inflate_into_timesformers_without_class_token(pool):
    """Scaling ViT's heads: a ViT without class token (big_vision GAP, or MAP) gives a TimeSformer without one, with
    the same head, and the ViT's logits on a static clip."""
    vit = randomize_(create_model("vit_tiny_builtin", class_token=False, global_pool=pool, num_classes=6)).eval()
    ts = inflate_vit_to_timesformer(vit, num_frames=3, mixer="divided").eval()
    assert ts.cls_token is None and ts.cfg.global_pool == pool and ts.pos_embed.shape[1] == 16
    img = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert (ts(img.unsqueeze(2).expand(-1, -1, 3, -1, -1)) - vit(img)).abs().max() <= 1e-5


def test_unetr_pools_with_map_or_gap_and_refuses_a_class_token_pool():
    m = create_model("unetr_tiny", img_size=(32, 32, 16), global_pool="map")
    assert m.forward_features(torch.randn(1, 1, 32, 32, 16)).shape == (1, 128)
    with pytest.raises(ValueError, match="no class token"):
        create_model("unetr_tiny", global_pool="token")
