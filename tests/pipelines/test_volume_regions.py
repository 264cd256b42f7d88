"""BraTS regions end to end through the CLI on an MSD-Task01-layout folder (4D NIfTI, 4 channels, dataset.json
without a validation list, as MSD ships it): train with --data brats, eval reports TC / WT / ET Dice, predict writes
a label map in the input's grid; the checkpoint carries the MRI preprocessing; a channel mismatch is one line."""

import json

import nibabel as nib
import numpy as np
import pytest
import torch
from testing_utils import brats_layout_from_msd

from spatiotemporal.cli.main import main
from spatiotemporal.data.volume import MriPhantomSpec, write_mri_phantom_dataset
from spatiotemporal.pipelines.region_segmentation import RegionScores

TINY_MIT = ["model.overrides.embed_dims=[8,16,24,32]", "model.overrides.num_heads=[1,1,1,1]",
            "model.overrides.depths=[1,1,1,1]", "model.overrides.decoder_dim=16"]
SMALL_DATA = ["data.volume.pixdim=[2.0,2.0,5.0]", "data.volume.roi=[16,16,16]", "data.volume.num_samples=1",
              "data.volume.cache=none", "data.sw_batch_size=1"]


def _msd_folder(root):
    """Three tiny 4-channel cases, ``dataset.json`` rewritten as MSD Task01's (``./`` paths, no validation)."""
    write_mri_phantom_dataset(root, MriPhantomSpec(n_train=2, n_val=1, shape=(24, 24, 12), spacing=(2.0, 2.0, 5.0)))
    doc = json.loads((root / "dataset.json").read_text())
    cases = doc.pop("training") + doc.pop("validation")
    doc.update(training=[{k: "./" + v for k, v in c.items()} for c in cases], test=[], numTraining=3)
    (root / "dataset.json").write_text(json.dumps(doc))
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("brats")
    data, run = _msd_folder(tmp / "Task01_BrainTumour"), tmp / "run"
    assert main(["train", "segformer3d", "--data", "brats", "--data-root", str(data), "--out", str(run),
                 *TINY_MIT, *SMALL_DATA, "--max-steps", "2", "--epochs", "1", "--batch-size", "1",
                 "--workers", "0"]) == 0
    return data, run / "checkpoints" / "last.pt"


def test_train_eval_reports_region_dice(trained, tmp_path, capsys):
    data, ckpt = trained
    spec = torch.load(ckpt, map_location="cpu", weights_only=True)  # our checkpoints are weights-only
    assert "zscore_nonzero" in json.dumps(spec, default=str) and "brats_regions" in json.dumps(spec, default=str)
    capsys.readouterr()
    report = tmp_path / "eval.json"
    assert main(["eval", "--checkpoint", str(ckpt), "--split", "val", "--json", str(report),
                 "data.inference.surface_metrics=true"]) == 0
    out = capsys.readouterr().out
    assert "Dice TC" in out and "Dice ET" in out
    m = json.loads(report.read_text())
    for grid in (m, m["resampled_grid"]):
        assert grid["num_samples"] == 1 and all(0 <= grid[f"dice_{r}"] <= 1 for r in ("TC", "WT", "ET"))
        assert "hd95_WT" in grid


def test_predict_writes_label_map_in_the_input_grid(trained, tmp_path):
    data, ckpt = trained
    case = data / "imagesTr" / "mri_002.nii.gz"
    out = tmp_path / "pred.nii.gz"
    assert main(["predict", str(case), "--checkpoint", str(ckpt), "--out", str(out)]) == 0
    src, lab = nib.load(str(case)), nib.load(str(out))
    assert lab.shape == src.shape[:3] and np.allclose(lab.affine, src.affine)
    assert set(np.unique(np.asanyarray(lab.dataobj)).tolist()) <= {0, 1, 2, 3}


def test_channel_mismatch_is_one_line(trained, tmp_path, capsys):
    data, ckpt = trained
    one = tmp_path / "t1.nii.gz"
    src = nib.load(str(data / "imagesTr" / "mri_000.nii.gz"))
    nib.save(nib.Nifti1Image(np.asanyarray(src.dataobj)[..., 0], src.affine), str(one))
    assert main(["predict", str(one), "--checkpoint", str(ckpt)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].count("\n") == 0 and "1 channel(s)" in err[-1] and "takes 4" in err[-1]
    capsys.readouterr()
    assert main(["train", "segformer3d", "--data", "brats", "--data-root", str(data), "--out", str(tmp_path / "r"),
                 *TINY_MIT, *SMALL_DATA, "model.overrides.in_chans=1", "--max-steps", "1", "--workers", "0"]) == 2
    assert "4 channel(s) (FLAIR, T1w, t1gd, T2w)" in capsys.readouterr().err


def test_region_scores_on_hand_made_masks():
    ref = torch.zeros(1, 3, 8, 8, 8)
    ref[:, :, 2:6, 2:6, 2:6] = 1
    ref[:, 2] = 0  # no ET in the reference
    pred = ref.clone()
    pred[:, 0, 2:4] = 0  # half the TC
    s = RegionScores(["TC", "WT", "ET"], surface=True)
    s.add(pred, ref, (1.0, 1.0, 1.0))
    r = s.result()
    assert r["dice_WT"] == 1 and r["dice_ET"] == 1 and abs(r["dice_TC"] - 2 * 32 / (32 + 64)) < 1e-6
    assert r["hd95_WT"] == 0 and r["hd95_TC"] > 0 and r["hd95_ET"] != r["hd95_ET"]  # NaN: no reference ET


def test_brats_layout_trains_and_predicts_its_own_labels(trained, tmp_path, caplog):
    msd, _ = trained
    data, run = brats_layout_from_msd(msd, tmp_path / "brats"), tmp_path / "run"
    with caplog.at_level("INFO", logger="spatiotemporal"):
        assert main(["train", "segformer3d", "--data", "brats", "--data-root", str(data), "--out", str(run),
                     *TINY_MIT, *SMALL_DATA, "--max-steps", "1", "--epochs", "1", "--batch-size", "1",
                     "--workers", "0"]) == 0
    assert "BraTS layout" in caplog.text
    out = tmp_path / "pred.nii.gz"
    case = data / "mri_002" / "mri_002_flair.nii.gz"
    stacked = tmp_path / "mri_002.nii.gz"  # predict takes one 4D file: the four modalities stacked, MSD order
    src = nib.load(str(case))
    chans = [np.asanyarray(nib.load(str(data / "mri_002" / f"mri_002_{m}.nii.gz")).dataobj)
             for m in ("flair", "t1", "t1ce", "t2")]
    nib.save(nib.Nifti1Image(np.stack(chans, -1), src.affine), str(stacked))
    assert main(["predict", str(stacked), "--checkpoint", str(run / "checkpoints" / "last.pt"), "--out", str(out)]) == 0
    lab = nib.load(str(out))
    assert lab.shape == src.shape and set(np.unique(np.asanyarray(lab.dataobj)).tolist()) <= {0, 1, 2, 4}


def test_rgb_segformer_inflates_into_four_mri_channels(tmp_path):
    """2D RGB weights -> a 4-channel SegFormer3D through ``init_from_checkpoint`` (what ``--init`` does): the first
    patch kernel's RGB filters are summed and shared by the 4 channels / 4, so a volume whose 4 channels and slices
    all equal a grey image g gives the 2D model's output on (g, g, g) (centre depth mode: exact)."""
    from spatiotemporal import create_model
    from spatiotemporal.models import init_from_checkpoint, save_pretrained

    small = dict(embed_dims=(8, 16, 24, 32), depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 1), decoder_dim=16,
                 sr_ratios=(4, 2, 1, 1), num_classes=3)
    torch.manual_seed(0)
    seg2d = create_model("segformer_b0", in_chans=3, img_size=(32, 32), **small).eval()
    p = save_pretrained(seg2d, tmp_path / "rgb.safetensors")
    seg3d = init_from_checkpoint(create_model("segformer3d_b0", in_chans=4, img_size=(32, 32, 16), **small), p,
                                 depth_mode="center").eval()
    w2 = seg2d.encoder.stages[0].downsample.proj.weight
    w3 = seg3d.encoder.stages[0].downsample.proj.weight
    assert w3.shape == (*w2.shape[:1], 4, *w2.shape[2:], w3.shape[-1])
    for c in range(4):
        assert torch.allclose(w3[:, c, ..., w3.shape[-1] // 2], w2.sum(1) / 4, atol=1e-6)
    g = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        y2 = seg2d(g.expand(1, 3, 32, 32))
        y3 = seg3d(g.unsqueeze(-1).expand(1, 4, 32, 32, 16).contiguous())
    assert y3.shape == (1, 3, 32, 32, 16) and (y3 - y2.unsqueeze(-1)).abs().max() <= 1e-4


@pytest.mark.parametrize("family, dataset, recipe", [("segformer3d", "brats", "segformer3d_brats"),
                                                     ("unetr", "brats", "unetr_brats"),
                                                     ("segformer3d", "builtin_mri", "segformer3d_mri_builtin")])
def test_brats_recipes_are_registered_and_read(family, dataset, recipe):
    from spatiotemporal.pipelines.recipes import config_dir, default_recipes
    from spatiotemporal.pipelines.volume import VolumePipeline

    assert default_recipes()[family][dataset] == recipe
    r = VolumePipeline().load_recipe(config_dir() / f"{recipe}.yaml", [])
    assert r.data.dataset == dataset and r.data.volume.intensity == "zscore_nonzero"
    assert r.data.volume.labels == "brats_regions" and 4 in r.model.overrides.values()


def test_region_segment_thresholds_and_keeps_largest_components():
    from spatiotemporal.pipelines.region_segmentation import RegionSegmentationTask
    from spatiotemporal.pipelines.segmentation import InferenceOptions

    class Logits(torch.nn.Module):  # logit +5 where the input is 1, -5 elsewhere, for each of the 3 regions
        def __init__(self):
            super().__init__()
            self.unused = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):
            return x.repeat(1, 3, 1, 1, 1) * 10 - 5

    x = torch.zeros(1, 1, 16, 16, 16)
    x[..., 1:4, 1:4, 1:4] = 1  # 27 voxels
    x[..., 8:14, 8:14, 8:14] = 1  # 216 voxels
    for lcc, want in ((False, 243), (True, 216)):
        task = RegionSegmentationTask(["TC", "WT", "ET"], (8, 8, 8), inference=InferenceOptions(largest_component=lcc))
        masks = task.segment(Logits(), x)
        assert masks.shape == (1, 3, 16, 16, 16) and masks.sum((2, 3, 4)).tolist() == [[want] * 3]
