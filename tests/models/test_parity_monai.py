"""MONAI UNETR state dicts (0.7 to 1.6 layouts) load into ours and give MONAI's outputs."""

import pytest
import torch
from monai.networks.nets import UNETR as MonaiUNETR
from testing_utils import randomize_

from spatiotemporal import load_pretrained
from spatiotemporal.models import CheckpointFormatError

SMALL = dict(in_channels=1, out_channels=4, img_size=(32, 32, 32), feature_size=8, hidden_size=96, mlp_dim=192,
             num_heads=4)
VARIANTS = {
    "default": {},
    "perceptron": {"proj_type": "perceptron"},
    "batchnorm": {"norm_name": "batch"},
    "no_conv_block": {"conv_block": False},
    "no_res_block": {"res_block": False},
    "qkv_bias": {"qkv_bias": True},
    "two_channels": {"in_channels": 2},
}


def _monai(**kw):
    return randomize_(MonaiUNETR(**{**SMALL, **kw}).eval())


def _compare(ours, ref, in_ch=1):
    x = torch.randn(1, in_ch, 32, 32, 32)
    with torch.no_grad():
        return (ours(x) - ref(x)).abs().max().item()


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_monai_weights_give_monai_outputs(variant):
    kw = VARIANTS[variant]
    ref = _monai(**kw)
    ours = load_pretrained(ref.state_dict(), num_heads=4)
    assert _compare(ours, ref, kw.get("in_channels", 1)) <= 1e-5


def test_monai_default_96_structure_matches():
    ref = MonaiUNETR(1, 14, (96, 96, 96))
    ours = load_pretrained(ref.state_dict())
    n_ref = sum(p.numel() for p in ref.parameters())
    assert n_ref == 92_802_478
    assert sum(p.numel() for p in ours.parameters()) == n_ref - 18_432


def test_old_and_new_monai_layouts_load():
    """<=0.8: cls_token + dead conv3 keys; 1.4-1.5: cross_attn; <=1.3: no norm_cross_attn."""
    ref = _monai()
    sd = dict(ref.state_dict())
    sd["vit.patch_embedding.cls_token"] = torch.zeros(1, 1, 96)
    for k in ("encoder2.blocks.0.1.conv3.conv.weight", "encoder2.blocks.1.1.conv3.conv.weight",
              "encoder3.blocks.0.1.conv3.conv.weight"):
        sd[k] = torch.zeros(16, 16, 1, 1, 1)
    for i in range(12):
        for n, shape in (("to_q.weight", (96, 96)), ("to_k.weight", (96, 96)), ("to_v.weight", (96, 96)),
                         ("out_proj.weight", (96, 96)), ("out_proj.bias", (96,))):
            sd[f"vit.blocks.{i}.cross_attn.{n}"] = torch.zeros(shape)
    with_ncx = load_pretrained(sd, num_heads=4)
    no_ncx = load_pretrained({k: v for k, v in sd.items() if "norm_cross_attn" not in k}, num_heads=4)
    assert _compare(with_ncx, ref) <= 1e-5 and _compare(no_ncx, ref) <= 1e-5


def test_research_training_checkpoint_container(tmp_path):
    ref = _monai()
    path = tmp_path / "model.pt"
    torch.save({"epoch": 5, "best_acc": 0.8, "state_dict": ref.state_dict()}, path)
    assert _compare(load_pretrained(path, num_heads=4), ref) <= 1e-5


def test_unknown_and_missing_monai_keys_are_named():
    sd = dict(_monai().state_dict())
    sd["vit.blocks.0.attn.mystery.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointFormatError, match="vit.blocks.0.attn.mystery.weight"):
        load_pretrained(sd, num_heads=4)
    sd = dict(_monai().state_dict())
    sd.pop("decoder3.transp_conv.conv.weight")
    with pytest.raises(CheckpointFormatError, match="decoder3.transp_conv.conv.weight"):
        load_pretrained(sd, num_heads=4)


SMALL_2D = dict(in_channels=1, out_channels=4, feature_size=8, hidden_size=96, mlp_dim=192, num_heads=4,
                spatial_dims=2)


@pytest.mark.parametrize("size", [96, 128])  # the sizes of MONAI's own 2D UNETR tests
@pytest.mark.parametrize("variant", ["default", "perceptron", "batchnorm", "no_res_block", "two_channels"])
def test_monai_2d_unetr_weights_give_monai_outputs(size, variant):
    kw = VARIANTS[variant]
    ref = randomize_(MonaiUNETR(**{**SMALL_2D, "img_size": (size, size), **kw}).eval())
    ours = load_pretrained(ref.state_dict(), num_heads=4)
    assert ours.arch == "unetr2d" and type(ours).modality == "image_seg"
    assert ours.source_format == "monai-unetr-2d"
    x = torch.randn(2, kw.get("in_channels", 1), size, size)
    with torch.no_grad():
        assert (ours(x) - ref(x)).abs().max() <= 1e-5


def test_monai_2d_unetr_structure_and_non_square_grids():
    ref = MonaiUNETR(1, 14, (96, 96), spatial_dims=2)
    ours = load_pretrained(ref.state_dict())
    n_ref = sum(p.numel() for p in ref.parameters())
    assert sum(p.numel() for p in ours.parameters()) == n_ref - 18_432  # MONAI's dead norm_cross_attn
    rect = randomize_(MonaiUNETR(**{**SMALL_2D, "img_size": (64, 96)}).eval())
    with pytest.raises(CheckpointFormatError, match=r"not a square; pass img_size=\(H, W\)"):
        load_pretrained(rect.state_dict(), num_heads=4)
    ours = load_pretrained(rect.state_dict(), num_heads=4, img_size=(64, 96))
    x = torch.randn(1, 1, 64, 96)
    with torch.no_grad():
        assert (ours(x) - rect(x)).abs().max() <= 1e-5
