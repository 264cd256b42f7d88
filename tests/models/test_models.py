"""Registry, parameter counts, embedding resizing and our own checkpoint format."""

import pickle

import pytest
import torch

from spatiotemporal import create_model, list_models, load_pretrained, save_pretrained
from spatiotemporal.layers import MIXERS
from spatiotemporal.models import CheckpointFormatError, model_spec


def _n(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("kw,expected", [
    ({"mixer": "divided"}, 121_566_352), ({"mixer": "joint"}, 86_112_400),
    ({"mixer": "joint", "framewise": True}, 86_106_256),  # the official space-only model
])
def test_timesformer_base_parameter_counts_equal_the_official(kw, expected):
    assert _n(create_model("timesformer_base", **kw)) == expected


def test_attention_is_an_alias_of_mixer():
    assert create_model("timesformer_tiny", attention="joint").cfg.mixer == "joint"
    with pytest.raises(TypeError, match="name the same slot"):
        create_model("timesformer_tiny", attention="joint", mixer="divided")


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
    with pytest.raises(TypeError, match="Did you mean .*num_frames.* Valid keys"):
        create_model("timesformer_tiny", num_frame=4)


@pytest.mark.parametrize("mixer", sorted(MIXERS) + ["framewise"])
def test_timesformer_any_mixer_and_resized_inputs(mixer):
    kw = {"mixer": "joint", "framewise": True} if mixer == "framewise" else {"mixer": mixer}
    m = create_model("timesformer_tiny", img_size=32, num_frames=4, **kw).eval()
    with torch.no_grad():
        assert m(torch.randn(2, 3, 4, 32, 32)).shape == (2, 8)
        assert m(torch.randn(1, 3, 6, 48, 40)).shape == (1, 8)  # more frames, other size: embeddings resized
        assert m.feature_map(torch.randn(1, 3, 4, 32, 32)).shape == (1, 128, 4, 4, 4)


@pytest.mark.parametrize("mixer", sorted(MIXERS))
def test_unetr_any_mixer_non_cubic(mixer):
    m = create_model("unetr_tiny", mixer=mixer, img_size=(32, 48, 16)).eval()
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
    m = create_model("timesformer_tiny", mixer="divided", num_classes=5).eval()
    for p in m.parameters():
        torch.nn.init.normal_(p, std=0.05)
    prep = {"version": 1, "dataset": "builtin", "video": {"num_frames": 8, "sampling_rate": 1}}
    path = save_pretrained(m, tmp_path / "w.safetensors", preprocessing=prep, class_names=list("abcde"))
    assert path.with_suffix(".json").exists()
    loaded = load_pretrained(path)
    x = torch.randn(1, 3, 8, 64, 64)
    with torch.no_grad():
        assert torch.equal(loaded(x), m(x))
    assert not loaded.training
    assert loaded.pretrained_cfg["preprocessing"] == prep and loaded.pretrained_cfg["class_names"] == list("abcde")
    assert loaded.model_name == "timesformer_tiny"
    spec = model_spec(loaded)  # re-saving keeps what the model was trained with
    assert spec["preprocessing"] == prep and spec["modality"] == "video" and spec["format_version"] == 3


def test_version_1_specs_still_load_and_keep_their_meaning(tmp_path):
    """Before format 2, TimeSformer configs said ``attention`` and ``space_only`` meant the framewise model."""
    m = create_model("timesformer_tiny", mixer="joint", framewise=True).eval()
    cfg = m.config_dict()
    cfg.pop("mixer"), cfg.pop("framewise")
    old = {"arch": "timesformer", "format_version": 1, "config": {**cfg, "attention": "space_only"}}
    path = tmp_path / "old.pt"
    torch.save({"model": m.state_dict(), "task": {"model_spec": old, "class_names": ["x"] * 8}}, path)
    loaded = load_pretrained(path)
    assert loaded.cfg.framewise and loaded.cfg.mixer == "joint"
    assert loaded.pretrained_cfg["legacy_version"] == 1 and loaded.pretrained_cfg["class_names"] == ["x"] * 8
    x = torch.randn(1, 3, 8, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x), m(x))


def test_every_model_declares_its_modality_and_input_spec():
    from spatiotemporal.models import ARCHS, model_entry

    assert {model_entry(n).arch for n in list_models()} == set(ARCHS)
    for name in ("vit_tiny_builtin", "timesformer_tiny", "unetr_tiny"):
        m = create_model(name)
        spec = m.input_spec()
        assert type(m).modality in ("image", "video", "volume")
        assert len(spec.size) == {"image": 2, "video": 3, "volume": 3}[type(m).modality]


def test_temporal_fc_zero_rule_lives_in_the_mixer_and_survives_any_init():
    from spatiotemporal.layers import init_weights_

    m = create_model("timesformer_tiny", mixer="divided")
    torch.nn.init.normal_(m.encoder.blocks[1].mixer.temporal_fc.weight)
    init_weights_(m)  # the generic pass, then each mixer's own hook
    assert all(b.mixer.temporal_fc.weight.abs().max() == 0 for b in m.encoder.blocks)


def test_mixers_add_their_no_weight_decay_names():
    m = create_model("timesformer_tiny", mixer="xca")
    assert {"pos_embed", "time_embed", "encoder.blocks.3.mixer.attn.temperature"} <= m.no_weight_decay()


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
