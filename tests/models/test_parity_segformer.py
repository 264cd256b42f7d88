"""timm PVTv2 and Hugging Face SegFormer weights load into our MiT / SegFormer and give their outputs; parameter
counts equal the references'."""

import re

import pytest
import timm
import torch
import torch.nn.functional as F
from testing_utils import randomize_
from transformers import SegformerConfig, SegformerForSemanticSegmentation

from spatiotemporal import create_model, load_pretrained
from spatiotemporal.models import CheckpointFormatError

HF_SIZES = {  # SegformerConfig arguments of the published nvidia/mit-b* / segformer-b* configs
    "b0": dict(depths=[2, 2, 2, 2], hidden_sizes=[32, 64, 160, 256], decoder_hidden_size=256),
    "b1": dict(depths=[2, 2, 2, 2], hidden_sizes=[64, 128, 320, 512], decoder_hidden_size=256),
    "b2": dict(depths=[3, 4, 6, 3], hidden_sizes=[64, 128, 320, 512], decoder_hidden_size=768),
    "b3": dict(depths=[3, 4, 18, 3], hidden_sizes=[64, 128, 320, 512], decoder_hidden_size=768),
    "b4": dict(depths=[3, 8, 27, 3], hidden_sizes=[64, 128, 320, 512], decoder_hidden_size=768),
    "b5": dict(depths=[3, 6, 40, 3], hidden_sizes=[64, 128, 320, 512], decoder_hidden_size=768),
}


def _n(m):
    return sum(p.numel() for p in m.parameters())


def _hf(size="b0", **kw):
    return SegformerForSemanticSegmentation(SegformerConfig(**{**HF_SIZES[size], **kw}))


def _hf_logits(hf, x):
    """Hugging Face's logits at 1/4, upsampled to the input as its loss does."""
    return F.interpolate(hf(pixel_values=x).logits, size=x.shape[2:], mode="bilinear", align_corners=False)


@pytest.mark.parametrize("size", ["b0", "b1", "b2", "b3", "b4", "b5"])
def test_parameter_counts_equal_timm_pvt_v2_and_hf_segformer(size):
    with torch.device("meta"):
        assert _n(create_model(f"pvt_v2_{size}")) == _n(timm.create_model(f"pvt_v2_{size}"))
        assert _n(create_model(f"segformer_{size}")) == _n(_hf(size, num_labels=150))


@pytest.mark.parametrize("shape", [(2, 3, 64, 64), (1, 3, 67, 45)])
def test_timm_pvt_v2_b0_weights_give_timm_outputs(shape):
    ref = randomize_(timm.create_model("pvt_v2_b0").eval())
    ours = load_pretrained(ref.state_dict())
    assert ours.source_format == "timm-pvt-v2" and ours.cfg.mlp_ratios == (8.0, 8.0, 4.0, 4.0)
    x = torch.randn(shape)
    with torch.no_grad():
        assert (ours(x) - ref(x)).abs().max() <= 1e-5
        stages = ref.forward_intermediates(x, intermediates_only=True)
        maps = list(ours.feature_maps(x).values())
    assert len(maps) == 4
    for a, b in zip(stages, maps):
        assert (a - b.squeeze(2)).abs().max() <= 1e-5


def test_hf_segformer_b0_weights_give_hf_outputs():
    hf = randomize_(_hf("b0", num_labels=7).eval())
    ours = load_pretrained(hf.state_dict())
    assert ours.source_format == "hf-segformer" and _n(ours) == _n(hf)
    for shape in ((2, 3, 64, 64), (1, 3, 67, 45)):
        x = torch.randn(shape)
        with torch.no_grad():
            ref = _hf_logits(hf, x)
            assert ours(x).shape == ref.shape
            assert (ours(x) - ref).abs().max() <= 1e-5
            assert (ours.forward_logits(x) - hf(pixel_values=x).logits).abs().max() <= 1e-5


def _to_v4(sd: dict) -> dict:
    """transformers 5 names back to the published (transformers 4) ones: the inverse of the renames."""
    inverse = [
        (r"^segformer\.stages\.(\d+)\.patch_embeddings\.", r"segformer.encoder.patch_embeddings.\1."),
        (r"^segformer\.stages\.(\d+)\.blocks\.", r"segformer.encoder.block.\1."),
        (r"^segformer\.stages\.(\d+)\.layer_norm\.", r"segformer.encoder.layer_norm.\1."),
        (r"\.attention\.q_proj\.", ".attention.self.query."), (r"\.attention\.k_proj\.", ".attention.self.key."),
        (r"\.attention\.v_proj\.", ".attention.self.value."), (r"\.attention\.o_proj\.", ".attention.output.dense."),
        (r"\.attention\.sequence_reduction\.sequence_reduction\.", ".attention.self.sr."),
        (r"\.attention\.sequence_reduction\.layer_norm\.", ".attention.self.layer_norm."),
        (r"\.mlp\.fc1\.", ".mlp.dense1."), (r"\.mlp\.fc2\.", ".mlp.dense2."),
        (r"\.layernorm_before\.", ".layer_norm_1."), (r"\.layernorm_after\.", ".layer_norm_2."),
        (r"^decode_head\.linear_projections\.", "decode_head.linear_c."),
    ]
    out = {}
    for k, v in sd.items():
        for pat, rep in inverse:
            k = re.sub(pat, rep, k)
        out[k] = v
    return out


def test_published_transformers_4_layout_loads_as_transformers_itself_reads_it(tmp_path, monkeypatch):
    """A state dict in the published names, read by transformers' own loader and by ours, gives one output."""
    from safetensors.torch import save_file

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    src = randomize_(_hf("b0", num_labels=5).eval())
    v4 = _to_v4(src.state_dict())
    assert "segformer.encoder.block.0.0.attention.self.query.weight" in v4
    assert "decode_head.linear_c.3.proj.weight" in v4
    src.config.save_pretrained(tmp_path)
    save_file({k: v.contiguous() for k, v in v4.items()}, str(tmp_path / "model.safetensors"))
    hf = SegformerForSemanticSegmentation.from_pretrained(str(tmp_path)).eval()
    ours = load_pretrained(v4)
    x = torch.randn(1, 3, 48, 40)
    with torch.no_grad():
        assert (ours(x) - _hf_logits(hf, x)).abs().max() <= 1e-5
        assert (ours(x) - _hf_logits(src, x)).abs().max() <= 1e-5


def test_hf_key_without_its_pair_or_unknown_is_named():
    sd = dict(_hf("b0", num_labels=3).state_dict())
    sd.pop("segformer.stages.1.blocks.0.attention.v_proj.weight")
    with pytest.raises(CheckpointFormatError, match="stages.1.blocks.0.mixer.kv.weight"):
        load_pretrained(sd)
    sd = dict(timm.create_model("pvt_v2_b0").state_dict())
    sd["stages.0.blocks.0.attn.extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointFormatError, match="attn.extra.weight"):
        load_pretrained(sd)
