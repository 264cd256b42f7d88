"""Registry, parameter counts, embedding resizing and our own checkpoint format."""

import pickle

import pytest
import torch

from spatiotemporal import create_model, list_models, load_pretrained, save_pretrained
from spatiotemporal.models import CheckpointFormatError


def _n(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("attention,expected", [
    ("divided", 121_566_352), ("joint", 86_112_400), ("space_only", 86_106_256),
])
def test_timesformer_base_parameter_counts_equal_the_official(attention, expected):
    assert _n(create_model("timesformer_base", attention=attention)) == expected


def test_timesformer_hr_and_l_parameter_counts():
    assert _n(create_model("timesformer_hr")) == 122_024_080
    assert _n(create_model("timesformer_l")) == 121_633_936


def test_unetr_default_parameter_count_equals_monai_without_dead_params():
    assert _n(create_model("unetr_base")) == 92_784_046  # MONAI 1.6.1's 92,802,478 less 18,432 norm_cross_attn


def test_vit_sizes():
    assert _n(create_model("vit_small_patch16_224")) == 22_050_664
    assert _n(create_model("vit_base_patch16_224")) == 86_567_656


def test_registry_lists_and_rejects():
    names = list_models()
    for n in ("timesformer_base", "timesformer_tiny", "unetr_base", "unetr_tiny", "deit3_small_patch16_224"):
        assert n in names
    with pytest.raises(KeyError, match="timesformer_base"):
        create_model("timesformer_bsae")
    with pytest.raises(TypeError, match="valid keys"):
        create_model("timesformer_tiny", num_frame=4)


@pytest.mark.parametrize("attention", ["divided", "joint", "space_only", "xca", "sra"])
def test_timesformer_any_mixer_and_resized_inputs(attention):
    kw = {"mixer_kwargs": {"ndim": 2}} if attention in ("xca", "sra") else {}
    m = create_model("timesformer_tiny", attention=attention, img_size=32, num_frames=4, **kw).eval()
    with torch.no_grad():
        assert m(torch.randn(2, 3, 4, 32, 32)).shape == (2, 8)
        assert m(torch.randn(1, 3, 6, 48, 40)).shape == (1, 8)  # more frames, other size: embeddings resized
        assert m.feature_map(torch.randn(1, 3, 4, 32, 32)).shape == (1, 128, 4, 4, 4)


@pytest.mark.parametrize("mixer", ["joint", "divided", "xca", "sra"])
def test_unetr_any_mixer_non_cubic(mixer):
    kw = {"mixer_kwargs": {"ndim": 3, "axis": 2}} if mixer in ("xca", "sra", "divided") else {}
    m = create_model("unetr_tiny", mixer=mixer, img_size=(32, 48, 16), **kw).eval()
    with torch.no_grad():
        y = m(torch.randn(1, 1, 32, 48, 16))
    assert y.shape == (1, 6, 32, 48, 16)


@pytest.mark.parametrize("pool", ["token", "avg", "map"])
def test_vit_heads_and_sizes(pool):
    m = create_model("vit_tiny_builtin", global_pool=pool, class_token=pool == "token").eval()
    with torch.no_grad():
        assert m(torch.randn(2, 3, 64, 64)).shape == (2, 10)
        assert m(torch.randn(1, 3, 96, 80)).shape == (1, 10)
        assert m.forward_features(torch.randn(1, 3, 64, 64)).shape == (1, 128)


def test_unetr_skip_indices():
    assert create_model("unetr_base").skips == (3, 6, 9)
    assert create_model("unetr_base", skips="paper").skips == (2, 5, 8)


def test_save_and_load_our_format(tmp_path):
    torch.manual_seed(0)
    m = create_model("timesformer_tiny", attention="divided", num_classes=5).eval()
    for p in m.parameters():
        torch.nn.init.normal_(p, std=0.05)
    path = save_pretrained(m, tmp_path / "w.safetensors")
    assert path.with_suffix(".json").exists()
    loaded = load_pretrained(path)
    x = torch.randn(1, 3, 8, 64, 64)
    with torch.no_grad():
        assert torch.equal(loaded(x), m(x))
    assert not loaded.training


def test_unknown_format_and_bad_keys_are_named(tmp_path):
    with pytest.raises(CheckpointFormatError, match="unknown checkpoint format"):
        load_pretrained({"foo.weight": torch.zeros(2)})
    m = create_model("timesformer_tiny")
    sd = {k: v for k, v in m.state_dict().items()}
    with pytest.raises(CheckpointFormatError, match="model="):
        load_pretrained(sd)
    sd.pop("encoder.blocks.0.ffn.fc1.weight")
    sd["encoder.blocks.0.extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointFormatError) as e:
        load_pretrained(sd, model="timesformer_tiny")
    assert "encoder.blocks.0.ffn.fc1.weight" in str(e.value) and "encoder.blocks.0.extra.weight" in str(e.value)


class _Evil:
    def __reduce__(self):
        return (print, ("unpickled!",))


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model": {"x": torch.zeros(1)}, "obj": _Evil()}, path, pickle_protocol=pickle.HIGHEST_PROTOCOL)
    with pytest.raises(CheckpointFormatError, match="weights-only"):
        load_pretrained(path)


def test_finetune_load_resizes_embeddings_and_replaces_heads(tmp_path):
    ts = create_model("timesformer_tiny", num_classes=4)
    p = save_pretrained(ts, tmp_path / "ts.safetensors")
    ft = load_pretrained(p, num_frames=16, img_size=48, num_classes=7)
    assert ft.time_embed.shape[1] == 16 and ft.pos_embed.shape[1] == 1 + 36 and ft.head.out_features == 7
    un = create_model("unetr_tiny", img_size=(32, 48, 16), out_channels=3)
    p = save_pretrained(un, tmp_path / "un.safetensors")
    ft = load_pretrained(p, img_size=(64, 48, 32), out_channels=5)
    assert ft.pos_embed.shape[1] == 8 * 6 * 4 and ft.out.conv.conv.out_channels == 5
    torch.testing.assert_close(ft.encoder.blocks[0].mixer.attn.qkv.weight, un.encoder.blocks[0].mixer.attn.qkv.weight)


def test_time_embedding_starts_at_zero_like_the_official_code_unless_asked():
    assert create_model("timesformer_tiny").time_embed.abs().max() == 0
    m = create_model("timesformer_tiny", time_embed_std=0.02)
    assert 0.005 < m.time_embed.std() < 0.04
