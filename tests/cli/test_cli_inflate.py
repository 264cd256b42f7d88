"""`spatio inflate` carries the 2D model's head: a MAP-head ViT (Scaling ViT's, no class token) inflated on the command
line gives what the Python inflation gives, and the architecture changes are one WARNING line."""

import logging

import torch
from testing_utils import randomize_

from spatiotemporal import create_model, load_pretrained, save_pretrained
from spatiotemporal.cli.main import main
from spatiotemporal.models import inflate_vit_to_timesformer


def test_a_map_head_vit_inflates_as_the_python_path_does(tmp_path, caplog):
    torch.manual_seed(0)
    vit = randomize_(create_model("vit_tiny_builtin", class_token=False, global_pool="map", depth=1)).eval()
    src = save_pretrained(vit, tmp_path / "vit_map.safetensors")
    out = tmp_path / "ts.safetensors"
    with caplog.at_level(logging.WARNING, logger="spatiotemporal.models"):
        assert main(["inflate", str(src), "--to", "timesformer_tiny", "num_frames=4", "--num-classes", "10",
                     "--out", str(out)]) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "class_token True -> False" in warnings[0]
    assert "global_pool 'token' -> 'map'" in warnings[0] and "depth 4 -> 1" in warnings[0]
    cli = load_pretrained(out).eval()
    py = inflate_vit_to_timesformer(vit, num_frames=4).eval()
    assert cli.cls_token is None and cli.cfg.global_pool == "map"
    img = torch.randn(2, 3, 32, 32)
    clip = img.unsqueeze(2).expand(-1, -1, 4, -1, -1)
    with torch.no_grad():
        assert (cli.forward_features(clip) - py.forward_features(clip)).abs().max() <= 1e-5
        assert (cli(clip) - vit(img)).abs().max() <= 1e-5


def test_a_head_the_target_cannot_hold_is_refused_in_one_line(tmp_path, capsys):
    vit = create_model("vit_tiny_builtin", depth=1)  # a class token: VideoMAE has none
    src = save_pretrained(vit, tmp_path / "vit.safetensors")
    capsys.readouterr()
    assert main(["inflate", str(src), "--to", "videomae_tiny", "--out", str(tmp_path / "vm.safetensors")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the vit model's class token cannot be carried" in err[0]
