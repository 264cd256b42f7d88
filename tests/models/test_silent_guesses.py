"""What a checkpoint does not store, or stores inconsistently, is never guessed silently (issue 24, items 4-5):
an assumed head count is one WARNING line saying how to set it; a transformers ``config.json`` whose frame count
disagrees with the weights is overruled by the weights with one WARNING line; integer weights are refused."""

from __future__ import annotations

import json
import logging

import pytest
import torch
from safetensors.torch import load_file, save_file
from testing_utils import randomize_

from spatiotemporal import load_pretrained
from spatiotemporal.models import create_model, save_pretrained
from spatiotemporal.models.convert import CheckpointFormatError


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_a_monai_unetr_without_its_head_count_warns_once_and_num_heads_sets_it(caplog):
    """Was: built with 1 head silently (outputs 0.25-0.33 away from MONAI's 4-head model)."""
    from monai.networks.nets import UNETR
    ref = randomize_(UNETR(1, 2, (32, 32, 32), feature_size=4, hidden_size=64, mlp_dim=128, num_heads=4).eval())
    with caplog.at_level(logging.WARNING, logger="spatiotemporal"):
        guessed = load_pretrained(ref.state_dict())
    assert _warnings(caplog) == [
        "<dict>: a MONAI UNETR state dict stores no head count: assumed num_heads=1 (the standard for hidden_size "
        "64); a model trained with another count gives other outputs: pass num_heads=N "
        "(load_pretrained(..., num_heads=N); spatio inflate --num-heads N) to set it"]
    assert guessed.cfg.patch_size == 16  # read from the patch embedding's kernel, not assumed
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="spatiotemporal"):
        ours = load_pretrained(ref.state_dict(), num_heads=4)
    assert _warnings(caplog) == []  # the caller said it: nothing assumed
    assert guessed.cfg.num_heads == 1 and ours.cfg.num_heads == 4  # outputs with 4: test_parity_monai.py


def test_a_timm_vit_without_its_head_count_warns_once(caplog):
    timm = pytest.importorskip("timm")
    ref = timm.create_model("vit_tiny_patch16_224", img_size=32, patch_size=8, embed_dim=64, depth=1, num_heads=4,
                            num_classes=3)
    with caplog.at_level(logging.WARNING, logger="spatiotemporal"):
        load_pretrained(ref.state_dict())
    (line,) = _warnings(caplog)
    assert line.startswith("<dict>: a timm/DeiT ViT state dict stores no head count: assumed num_heads=1 (the "
                           "standard for embed_dim 64)"), line


def test_a_transformers_timesformer_folder_whose_config_says_other_frames_is_built_from_the_weights(tmp_path,
                                                                                                      caplog):
    """Was: a 16-frame model with the 8-frame time embedding resized, silently."""
    transformers = pytest.importorskip("transformers")
    cfg = transformers.TimesformerConfig(image_size=32, patch_size=8, num_frames=8, hidden_size=64,
                                         num_hidden_layers=1, num_attention_heads=4, intermediate_size=128,
                                         num_labels=3)
    ref = randomize_(transformers.TimesformerForVideoClassification(cfg).eval())
    ref.save_pretrained(tmp_path, safe_serialization=True)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "num_frames": 16}))
    with caplog.at_level(logging.WARNING, logger="spatiotemporal"):
        ours = load_pretrained(tmp_path)
    assert _warnings(caplog) == [
        f"{tmp_path}: config.json says num_frames 16, but timesformer.embeddings.time_embeddings holds 8 frames: "
        "built as the weights' 8-frame model; pass num_frames=16 to resize the time embedding to 16 frames"]
    assert ours.cfg.num_frames == 8
    x = torch.randn(1, 3, 8, 32, 32)
    with torch.no_grad():
        assert (ours(x) - ref(pixel_values=x.transpose(1, 2)).logits).abs().max() <= 1e-5
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="spatiotemporal"):
        asked = load_pretrained(tmp_path, num_frames=16)  # resizing on request is no guess
    assert asked.cfg.num_frames == 16 and _warnings(caplog) == []


def test_integer_weights_in_a_safetensors_file_are_refused_by_name(tmp_path):
    """Was: cast to float and used silently."""
    path = save_pretrained(create_model("vit", img_size=16, patch_size=8, embed_dim=16, depth=1, num_heads=2,
                                        num_classes=3), tmp_path / "m.safetensors")
    state = load_file(path)
    state["head.weight"] = (state["head.weight"] * 100).long()
    save_file(state, path)  # the spec stays in the JSON beside it
    with pytest.raises(CheckpointFormatError) as e:
        load_pretrained(path)
    assert str(e.value) == (
        f"{path}: 1 weight tensors are integers where VisionTransformer has floating-point weights "
        "(head.weight (int64)): cast to float they would be used as whole numbers (quantised or wrongly saved "
        "weights); save the floating-point weights")
