"""Dice: equal to MONAI's DiceMetric, a predicted class the reference lacks is a false positive, the table aligns
long names, and `spatio eval` reports the original grid (the label maps `spatio predict` writes) and the resampled
grid."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.metrics import DiceMetric
from monai.networks.utils import one_hot

from spatiotemporal.cli.main import main
from spatiotemporal.pipelines.segmentation import DiceSums, SegmentationTask, dice_per_class, dice_table


def test_dice_per_class_equals_monai_dicemetric():
    g = torch.Generator().manual_seed(0)
    for trial in range(20):
        k = 5
        ref = torch.randint(0, k, (12, 10, 9), generator=g)
        pred = torch.randint(0, k, (12, 10, 9), generator=g)
        if trial % 2:  # classes missing from one map or both
            ref[ref == 3] = 0
            pred[pred == 3] = 0
            pred[pred == 4] = 1
        dice, counted = dice_per_class(pred, ref, k)
        monai = DiceMetric(include_background=True, reduction="none", ignore_empty=False)(
            one_hot(pred[None, None], k), one_hot(ref[None, None], k))[0].double()
        assert torch.allclose(dice[counted], monai[counted], atol=1e-12)
        in_either = torch.tensor([bool((ref == c).any() or (pred == c).any()) for c in range(k)])
        assert torch.equal(counted, in_either)


def test_a_class_predicted_but_absent_from_the_reference_counts_as_a_false_positive():
    names = ["background", "liver", "left_adrenal_gland"]
    ref = torch.zeros(8, 8, 8, dtype=torch.long)
    ref[:4] = 1
    pred = ref.clone()
    pred[6:, :2, :2] = 2  # the reference has no adrenal gland; the model paints one
    sums = DiceSums(names)
    sums.add(pred, ref)
    sums.add(ref, ref)  # a second, perfect case: the gland is in neither map there, so it does not count
    m = sums.result()
    assert m["dice_left_adrenal_gland"] == 0.0 and m["dice_liver"] == 1.0
    assert m["mean_dice"] == 0.5  # (liver 1 + gland 0) / 2: the false positive is not dropped
    assert m["num_samples"] == 2


def test_sliding_window_task_counts_false_positives_too():
    class Paints(torch.nn.Module):  # predicts class 2 everywhere the input is 1
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(()))

        def forward(self, x):
            return torch.cat([1 - x, torch.zeros_like(x), x], 1) * self.w

    label = torch.zeros(1, 1, 16, 16, 16)
    image = torch.zeros_like(label)
    image[..., :4, :4, :4] = 1
    m = SegmentationTask(["bg", "a", "b"], roi=(16, 16, 16)).evaluate(Paints(), [{"image": image, "label": label}])
    assert m["dice_b"] == 0.0 and "dice_a" not in m and m["mean_dice"] == 0.0


def test_dice_table_aligns_long_names_and_marks_uncounted_classes():
    names = ["background", "spleen", "inferior_vena_cava", "portal_vein_and_splenic_vein"]
    table = dice_table({"original grid": {"dice_background": 0.9, "dice_spleen": 0.81234, "mean_dice": 0.8,
                                          "mean_dice_bg": 0.85},
                        "resampled grid": {"dice_background": 0.5, "dice_spleen": 0.7, "dice_inferior_vena_cava": 0.1,
                                           "mean_dice": 0.4, "mean_dice_bg": 0.43}}, names)
    lines = table.splitlines()
    assert len(lines) == 1 + len(names) + 2
    assert len({len(line) for line in lines}) == 1  # every row the same width: columns line up
    assert lines[0].split() == ["class", "original", "grid", "resampled", "grid"]
    row = next(line for line in lines if line.startswith("portal_vein_and_splenic_vein "))
    assert row.split()[1:] == ["-", "-"]
    assert lines[2].split() == ["spleen", "0.8123", "0.7000"]
    assert lines[3].split() == ["inferior_vena_cava", "-", "0.1000"]


pytestmark = pytest.mark.usefixtures("module_cache")


def test_eval_reports_dice_on_the_original_grid_of_the_label_files(tmp_path, capsys):
    out = tmp_path / "unetr"
    assert main(["train", "unetr", "--out", str(out), "--max-steps", "1", "--epochs", "1", "--workers", "0",
                 "--batch-size", "2", "model.overrides.num_layers=2", "train.amp=none"]) == 0  # eval runs fp32
    ckpt = out / "checkpoints" / "last.pt"
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(ckpt), "--split", "val", "--json", str(tmp_path / "eval.json")]) == 0
    printed = capsys.readouterr().out
    metrics = json.loads((tmp_path / "eval.json").read_text())
    assert metrics["grid"] == "original" and metrics["split"] == "validation"
    assert "class           original grid  resampled grid" in printed

    # independently: the label maps `spatio predict` writes in each patient's grid, against the label files
    from spatiotemporal.data.volume import ensure_builtin_volume_dataset, load_volume_datalist

    dl = load_volume_datalist(ensure_builtin_volume_dataset())
    sums = DiceSums(dl.class_names)
    for i, case in enumerate(dl.validation):
        pred_file = tmp_path / f"pred{i}.nii.gz"
        assert main(["predict", case["image"], "--checkpoint", str(ckpt), "--out", str(pred_file)]) == 0
        pred = np.asarray(nib.load(str(pred_file)).dataobj).astype(np.int64)
        ref = np.asarray(nib.load(case["label"]).dataobj).astype(np.int64)
        sums.add(torch.from_numpy(pred), torch.from_numpy(ref))
    expected = sums.result()
    assert metrics["num_samples"] == len(dl.validation)
    for key, value in expected.items():
        assert metrics[key] == pytest.approx(value, abs=1e-12), key
    # the resampled grid is the training validation's (what train reported as final_metrics)
    summary = json.loads((out / "summary.json").read_text())
    for key, value in summary["final_metrics"].items():
        assert metrics["resampled_grid"][key] == pytest.approx(value, abs=1e-9), key
    assert metrics["mean_dice_bg"] != pytest.approx(metrics["resampled_grid"]["mean_dice_bg"], abs=1e-3)
