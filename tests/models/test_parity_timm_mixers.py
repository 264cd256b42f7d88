"""timm's MLP-Mixer, ConvMixer and XCiT weights (random, every tensor) load into ours and give timm's outputs."""

import pytest
import timm
import torch
from testing_utils import randomize_
from timm.models.convmixer import ConvMixer

from spatiotemporal import load_pretrained

#: (timm name, timm kwargs, input size)
CASES = {
    "mixer_b16_224": ("mixer_b16_224", {}, 224),
    "convmixer_768_32": ("convmixer_768_32", {}, 56),
    "xcit_nano_12_p16_224": ("xcit_nano_12_p16_224", {}, 96),
    "xcit_tiny_24_p8_224": ("xcit_tiny_24_p8_224", {"depth": 3}, 48),  # patch-8 stem, eta 1e-5, tokens_norm
}


def _timm(name, kw, num_classes=11):
    m = timm.create_model(name, pretrained=False, num_classes=num_classes, **kw).eval()
    for mod in m.modules():
        if hasattr(mod, "fused_attn"):
            mod.fused_attn = False  # timm's plain path, not SDPA
    return randomize_(m)


@pytest.mark.parametrize("case", sorted(CASES))
def test_timm_weights_give_timm_outputs(case):
    name, kw, size = CASES[case]
    ref = _timm(name, kw)
    ours = load_pretrained(ref.state_dict())
    assert ours.source_format.startswith("timm-")
    x = torch.randn(1 if size > 150 else 2, 3, size, size)
    with torch.no_grad():
        diff = (ours(x) - ref(x)).abs().max().item()
        fdiff = (ours.forward_features(x) - ref.forward_head(ref.forward_features(x), pre_logits=True)).abs().max()
        scale = ref(x).abs().max().item()
    assert diff <= 1e-5 and fdiff <= 1e-5 and scale > 1e-2, (case, diff, fdiff, scale)


def test_convmixer_activation_is_inferred_from_the_published_configs():
    relu = load_pretrained(_timm("convmixer_768_32", {}).state_dict())
    gelu = load_pretrained(randomize_(ConvMixer(dim=32, depth=2, kernel_size=9, patch_size=14)).state_dict())
    assert (relu.cfg.act, relu.cfg.kernel_size, relu.cfg.depth) == ("relu", 7, 32)
    assert (gelu.cfg.act, gelu.cfg.patch_size) == ("gelu", 14)


def test_locuslab_convmixer_layout(tmp_path):
    """locuslab/convmixer saves an ``nn.Sequential``: stem 0..2, blocks 3.., pooling, flatten, head last."""
    ref = randomize_(ConvMixer(dim=64, depth=2, kernel_size=5, patch_size=7, num_classes=11).eval())
    sd = {}
    for k, v in ref.state_dict().items():
        part, rest = k.split(".", 1)
        if part in ("stem", "blocks"):
            i, rest = rest.split(".", 1)
            sd[f"{int(i) + (3 if part == 'blocks' else 0)}.{rest}"] = v
        else:
            sd[f"7.{rest}"] = v  # the head, after AdaptiveAvgPool2d (5) and Flatten (6)
    torch.save(sd, tmp_path / "convmixer.pth")
    ours = load_pretrained(tmp_path / "convmixer.pth")
    assert (ours.cfg.act, ours.cfg.dim, ours.cfg.depth, ours.cfg.kernel_size) == ("gelu", 64, 2, 5)
    x = torch.randn(2, 3, 56, 56)
    with torch.no_grad():
        assert (ours(x) - ref(x)).abs().max() <= 1e-5


def test_official_xcit_layout_with_fused_class_attention_qkv():
    """facebookresearch/xcit names the position encoding ``pos_embeder`` and fuses the class-attention q, k, v."""
    ref = _timm("xcit_nano_12_p16_224", {"depth": 2})
    state, sd = ref.state_dict(), {}
    for k, v in state.items():
        if k.startswith("cls_attn_blocks.") and (".attn.k." in k or ".attn.v." in k):
            continue
        if k.startswith("cls_attn_blocks.") and ".attn.q." in k:
            sd[k.replace(".q.", ".qkv.")] = torch.cat([state[k.replace(".q.", f".{n}.")] for n in "qkv"])
            continue
        sd[k.replace("pos_embed.", "pos_embeder.")] = v
    assert "cls_attn_blocks.0.attn.qkv.weight" in sd and "pos_embeder.token_projection.weight" in sd
    ours = load_pretrained(sd)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert (ours(x) - ref(x)).abs().max() <= 1e-5
