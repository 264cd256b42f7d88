"""transformers' TimeSformer and VideoMAE folders (config.json + model.safetensors) load into ours and give
transformers' outputs (random weights, fp32, eval)."""

import json

import pytest
import torch
from testing_utils import randomize_

from spatiotemporal import load_pretrained

transformers = pytest.importorskip("transformers")

LABELS = {0: "bowling", 1: "surfing", 2: "juggling"}


def _small(**kw):
    return dict(image_size=32, patch_size=8, num_frames=4, hidden_size=64, num_hidden_layers=2,
                num_attention_heads=4, intermediate_size=128, id2label=LABELS,
                label2id={v: k for k, v in LABELS.items()}, **kw)


def _save(model, folder):
    randomize_(model.eval())
    model.save_pretrained(folder, safe_serialization=True)
    return model


def _compare(ref, ours, t=4, size=32):
    x = torch.randn(2, 3, t, size, size)
    with torch.no_grad():
        want = ref(pixel_values=x.transpose(1, 2)).logits
        got = ours(x)
    return (got - want).abs().max().item()


@pytest.mark.parametrize("attention", ["divided_space_time", "joint_space_time"])
def test_transformers_timesformer_folder(tmp_path, attention):
    cfg = transformers.TimesformerConfig(**_small(attention_type=attention))
    ref = _save(transformers.TimesformerForVideoClassification(cfg), tmp_path)
    ours = load_pretrained(tmp_path)
    assert ours.arch == "timesformer" and ours.cfg.mixer == attention.split("_")[0]
    assert ours.source_format == "transformers-timesformer"
    assert ours.pretrained_cfg["class_names"] == ["bowling", "surfing", "juggling"]
    assert _compare(ref, ours) <= 1e-5


@pytest.mark.parametrize("qv_bias", [True, False])
def test_transformers_videomae_folder(tmp_path, qv_bias):
    cfg = transformers.VideoMAEConfig(**_small(tubelet_size=2, qv_bias=qv_bias))
    ref = _save(transformers.VideoMAEForVideoClassification(cfg), tmp_path)
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(
        {"image_mean": [0.5, 0.4, 0.3], "image_std": [0.2, 0.2, 0.25]}))
    ours = load_pretrained(tmp_path)
    assert ours.arch == "videomae" and ours.cfg.tubelet_size == 2 and ours.cfg.qkv_bias == qv_bias
    assert ours.input_spec().mean == (0.5, 0.4, 0.3)
    assert ours.pretrained_cfg["class_names"] == list(LABELS.values())
    assert _compare(ref, ours) <= 1e-5


def test_transformers_videomae_features_and_divided_mixer(tmp_path):
    """The encoder tokens equal transformers' last hidden state; the same weights run with divided attention
    (any mixer works in VideoMAE; temporal attention starts as a zero update)."""
    cfg = transformers.VideoMAEConfig(**_small(tubelet_size=2))
    ref = _save(transformers.VideoMAEForVideoClassification(cfg), tmp_path)
    ours = load_pretrained(tmp_path)
    x = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        hidden = ref.videomae(x.transpose(1, 2)).last_hidden_state
        assert (ours.forward_tokens(x)[0] - hidden).abs().max() <= 1e-5
    assert load_pretrained(tmp_path, mixer="space_only")(x).shape == (1, 3)


def test_unsupported_transformers_folder_is_one_clear_error(tmp_path):
    cfg = transformers.TimesformerConfig(**_small(attention_type="space_only"))
    _save(transformers.TimesformerForVideoClassification(cfg), tmp_path)
    with pytest.raises(ValueError, match="attention_type 'space_only'"):
        load_pretrained(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="no model.safetensors"):
        load_pretrained(tmp_path)
