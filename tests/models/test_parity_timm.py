"""timm and facebookresearch/deit ViT / DeiT III weights load into ours and give timm's outputs."""

import re

import pytest
import timm
import torch
from testing_utils import randomize_

from spatiotemporal import load_pretrained

CASES = {
    "vit_small": ("vit_small_patch16_224", {}),
    "deit3_small": ("deit3_small_patch16_224", {}),  # LayerScale, no class-token position slot
    "vit_gap": ("vit_small_patch16_224", {"global_pool": "avg", "class_token": False}),  # fc_norm
    "vit_map": ("vit_small_patch16_224", {"global_pool": "map", "class_token": False}),
    "vit_tiny_p8": ("vit_tiny_patch16_224", {"patch_size": 8}),
}


def _timm(name, kw, img=64):
    m = timm.create_model(name, pretrained=False, img_size=img, num_classes=11, **kw).eval()
    return randomize_(m)


@pytest.mark.parametrize("case", sorted(CASES))
def test_timm_weights_give_timm_outputs(case):
    name, kw = CASES[case]
    ref = _timm(name, kw)
    ours = load_pretrained(ref.state_dict(), num_heads=ref.blocks[0].attn.num_heads)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        diff = (ours(x) - ref(x)).abs().max().item()
        fdiff = (ours.forward_features(x) - ref.forward_head(ref.forward_features(x), pre_logits=True)).abs().max()
    assert diff <= 1e-5 and fdiff <= 1e-5, (case, diff, fdiff)


def test_deit_repo_checkpoint_with_gamma_keys(tmp_path):
    """facebookresearch/deit stores LayerScale as ``gamma_1``/``gamma_2`` under ``checkpoint['model']``."""
    ref = _timm("deit3_small_patch16_224", {})
    sd = {re.sub(r"ls([12])\.gamma", r"gamma_\1", k): v for k, v in ref.state_dict().items()}
    assert any("gamma_1" in k for k in sd)
    path = tmp_path / "deit_3_small_224_1k.pth"
    torch.save({"model": sd, "epoch": 799}, path)
    ours = load_pretrained(path)
    assert ours.cfg.no_embed_class and ours.cfg.init_values
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert (ours(x) - ref(x)).abs().max() <= 1e-5


def test_pos_embed_interpolated_on_load_for_higher_resolution():
    """Low-resolution weights fine-tuned at a higher resolution: timm's own resample gives the same logits."""
    ref = _timm("vit_small_patch16_224", {})
    ours = load_pretrained(ref.state_dict(), img_size=96)
    ref96 = timm.create_model("vit_small_patch16_224", pretrained=False, img_size=96, num_classes=11).eval()
    sd = dict(ref.state_dict())
    sd["pos_embed"] = timm.layers.resample_abs_pos_embed(sd["pos_embed"], (6, 6), (4, 4), num_prefix_tokens=1)
    ref96.load_state_dict(sd)
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        assert (ours(x) - ref96(x)).abs().max() <= 1e-5


def test_head_replaced_when_class_count_differs():
    ref = _timm("vit_small_patch16_224", {})
    ours = load_pretrained(ref.state_dict(), num_classes=3)
    assert ours.head.out_features == 3
    torch.testing.assert_close(ours.encoder.blocks[0].mixer.attn.qkv.weight, ref.blocks[0].attn.qkv.weight)
