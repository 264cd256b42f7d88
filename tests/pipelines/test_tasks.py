"""Classification and segmentation tasks: multi-view reduction, top-k, sliding-window Dice per class."""

import torch
from torch import nn

from spatiotemporal.pipelines.classification import ClassificationTask, topk_correct
from spatiotemporal.pipelines.segmentation import SegmentationTask, dice_table


class _Oracle3d(nn.Module):
    """Logits = one-hot of the integer label stored in the input channel (a perfect segmenter)."""

    def __init__(self, k):
        super().__init__()
        self.k = k
        self.w = nn.Parameter(torch.ones(()))

    def forward(self, x):
        return torch.nn.functional.one_hot(x[:, 0].round().long(), self.k).permute(0, 4, 1, 2, 3).float() * self.w


def test_sliding_window_dice_is_one_for_a_perfect_model_and_absent_classes_are_left_out():
    label = torch.zeros(1, 1, 40, 36, 20)
    label[:, :, 5:20, 5:15, 2:10] = 1
    label[:, :, 25:35, 20:30, 10:18] = 2  # class 3 never appears
    task = SegmentationTask(["bg", "a", "b", "c"], roi=(16, 16, 16), overlap=0.25, sw_batch_size=2)
    m = task.evaluate(_Oracle3d(4), [{"image": label.clone(), "label": label}])
    assert m["dice_bg"] == 1.0 and m["dice_a"] == 1.0 and m["dice_b"] == 1.0 and "dice_c" not in m
    assert m["mean_dice"] == 1.0 and m["mean_dice_bg"] == 1.0
    assert "mean (fg)" in dice_table({"dice": m}, task.class_names)


def test_segmentation_dice_of_a_half_wrong_prediction():
    label = torch.zeros(1, 1, 16, 16, 16)
    label[:, :, :8] = 1
    pred_in = torch.zeros_like(label)
    pred_in[:, :, :4] = 1  # half of class a predicted, the rest called background
    task = SegmentationTask(["bg", "a"], roi=(16, 16, 16))
    m = task.evaluate(_Oracle3d(2), [{"image": pred_in, "label": label}])
    assert abs(m["dice_a"] - 2 * 4 / (4 + 8)) < 1e-6


class _Linear(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 5)

    def forward(self, x):
        return self.fc(x.flatten(1))


def test_multi_view_mean_and_sum_and_topk():
    torch.manual_seed(0)
    model = _Linear()
    x = torch.randn(4, 3, 6)  # 4 samples x 3 views
    y = torch.tensor([0, 1, 2, 3])
    per_view = model(x.flatten(0, 1)).view(4, 3, 5)
    for reduce, agg in (("mean", per_view.mean(1)), ("sum", per_view.sum(1))):
        task = ClassificationTask("image", view_reduce=reduce)
        batch = {"image": x.unsqueeze(-1).unsqueeze(-1).expand(4, 3, 6, 1, 1).reshape(4, 3, 6, 1, 1), "label": y}
        model_img = nn.Sequential(nn.Flatten(1), model.fc)
        got = task.evaluate(model_img, [batch])
        top1 = (agg.argmax(1) == y).float().mean().item() * 100
        assert abs(got["top1"] - top1) < 1e-4 and got["num_samples"] == 4
    logits = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1]])
    assert [int(c) for c in topk_correct(logits, torch.tensor([0, 0]), ks=(1, 2))] == [1, 2]


def test_all_skipped_batch_gives_zero_loss_with_a_graph():
    model = _Linear()
    task = ClassificationTask("image")
    loss, logs, n = task.train_step(model, {"image": torch.zeros(0, 6), "label": torch.zeros(0, dtype=torch.long)})
    loss.backward()
    assert n == 0 and loss.item() == 0.0


def test_segmentation_reports_how_many_volumes_it_evaluated():
    label = torch.zeros(1, 1, 16, 16, 16)
    label[:, :, :8] = 1
    task = SegmentationTask(["bg", "a"], roi=(16, 16, 16))
    assert task.evaluate(_Oracle3d(2), [{"image": label.clone(), "label": label}] * 2)["num_samples"] == 2
    assert task.evaluate(_Oracle3d(2), [])["num_samples"] == 0  # the trainer refuses such an evaluation
