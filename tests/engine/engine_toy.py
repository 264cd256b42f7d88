"""Tiny task / model / dataset for the engine tests; also a script run in subprocesses and under torchrun:

    python engine_toy.py OUT [key=value ...]     (keys of ToyRecipe; env TOY_HANG_AFTER, TOY_AUDIT_DIR)

It writes OUT/final_weights.pt (rank 0) with the final model state. With ``TOY_AUDIT_DIR`` every file
write / rename / removal / mkdir under OUT is recorded (Python audit hooks) and saved per rank as
``TOY_AUDIT_DIR/writes_rank{RANK}.json``.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset, default_collate

from spatiotemporal.data.seeding import seed_item
from spatiotemporal.engine import (
    ScheduleConfig,
    TrainConfig,
    Trainer,
    all_reduce_sum,
    load_config,
    seed_everything,
)

DIM, CLASSES = 16, 4


def is_corrupt(index: int) -> bool:
    return index % 13 == 5


class ToyDataset(Dataset):
    """``{"x": (DIM,), "y": ()}`` from fixed prototypes; train items get a random augmentation drawn
    after ``seed_item`` (noise from torch, flip from the returned numpy Generator). Some indices are
    "corrupt" when ``with_corrupt`` (every index when it is ``"all"``), as a video loader would report
    undecodable files: ``{"skip": path}``."""

    def __init__(self, n: int, seed: int, train: bool, with_corrupt: bool | str = False) -> None:
        self.protos = torch.randn(CLASSES, DIM, generator=torch.Generator().manual_seed(1234))
        g = torch.Generator().manual_seed(4321 + n)
        self.labels = torch.randint(0, CLASSES, (n,), generator=g)
        self.base = self.protos[self.labels] + 0.5 * torch.randn(n, DIM, generator=g)
        self.seed, self.train, self.with_corrupt, self.epoch = seed, train, with_corrupt, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        rng = seed_item(self.seed, self.epoch, index)
        if self.with_corrupt == "all" or (self.with_corrupt and is_corrupt(index)):
            return {"skip": f"/data/clip_{index}.mp4"}
        x = self.base[index].clone()
        if self.train:
            x = x + 0.1 * torch.randn(DIM)
            if rng.random() < 0.5:
                x = x.flip(0)
        return {"x": x, "y": self.labels[index]}


def skipping_collate(items):
    """Drop corrupt items; their paths go to ``batch["skipped"]`` (an empty batch when all are corrupt)."""
    good = [it for it in items if "skip" not in it]
    batch = default_collate(good) if good else {"x": torch.zeros(0, DIM), "y": torch.zeros(0, dtype=torch.long)}
    batch["skipped"] = [it["skip"] for it in items if "skip" in it]
    return batch


class ToyModel(nn.Module):
    """``fc1 -> GELU -> blocks (residual Linear + GELU, a ModuleList: FSDP's sharding units) -> head``."""

    def __init__(self, dropout: float = 0.0, blocks: int = 0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(DIM, 32)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(nn.Linear(32, 32) for _ in range(blocks))
        self.head = nn.Linear(32, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, DIM) -> (B, CLASSES)
        h = F.gelu(self.fc1(x))
        for blk in self.blocks:
            h = h + F.gelu(blk(h))
        return self.head(self.drop(h))


class ToyTask:
    primary_metric = "acc"
    higher_is_better = True

    def __init__(self, hang_after: int | None = None) -> None:
        self.hang_after, self.calls = hang_after, 0

    def train_step(self, model, batch):
        self.calls += 1
        if self.hang_after is not None and self.calls > self.hang_after:
            time.sleep(600)  # the parent test kills us here
        if len(batch["y"]) == 0:  # every input skipped: a zero loss that still reaches every parameter (DDP)
            return sum(p.sum() * 0 for p in model.parameters()), {}, 0
        logits = model(batch["x"])
        loss = F.cross_entropy(logits, batch["y"])
        acc = (logits.argmax(1) == batch["y"]).float().mean()
        return loss, {"train_acc": acc}, len(batch["y"])

    def evaluate(self, model, loader):
        sums = torch.zeros(3, dtype=torch.float64)
        for batch in loader:
            logits = model(batch["x"])
            sums += torch.tensor([F.cross_entropy(logits, batch["y"], reduction="sum").item(),
                                  (logits.argmax(1) == batch["y"]).sum().item(), len(batch["y"])],
                                 dtype=torch.float64)
        sums = all_reduce_sum(sums)
        n = max(float(sums[2]), 1.0)
        return {"loss": float(sums[0]) / n, "acc": float(sums[1]) / n, "count": float(sums[2]),
                "num_samples": float(sums[2])}


def toy_config(out: Path, **train) -> TrainConfig:
    """AdamW + warm-up cosine defaults for the toy runs; ``train`` overrides TrainConfig fields."""
    cfg = TrainConfig(out=str(out), epochs=2, batch_size=8, num_workers=0, log_every=1, device="cpu",
                      progress="never", seed=3, amp="none")  # exact comparisons stay fp32
    cfg.optim.lr, cfg.optim.weight_decay = 0.01, 0.05
    cfg.sched = ScheduleConfig(name="cosine", warmup_steps=2, warmup_lr=1e-4, min_lr=1e-5)
    for k, v in train.items():
        setattr(cfg, k, v)
    return cfg


@dataclass
class ToyRecipe:
    train: TrainConfig = field(default_factory=lambda: toy_config(Path("runs/toy")))
    n_train: int = 48
    n_val: int = 20
    dropout: float = 0.0
    corrupt: bool = False
    blocks: int = 0


def build(cfg: TrainConfig, n_train: int = 48, n_val: int | None = 20, dropout: float = 0.0,
          corrupt: bool | str = False, hang_after: int | None = None, val_corrupt: bool | str = False,
          blocks: int = 0):
    """Everything from ``cfg.seed``: ``(trainer, model)``; ``n_val=None``: no validation set."""
    seed_everything(cfg.seed)
    model = ToyModel(dropout, blocks)
    train_ds = ToyDataset(n_train, cfg.seed, train=True, with_corrupt=corrupt)
    val_ds = None if n_val is None else ToyDataset(n_val, cfg.seed + 1, train=False, with_corrupt=val_corrupt)
    return Trainer(model, ToyTask(hang_after), train_ds, val_ds, cfg, collate_fn=skipping_collate), model


def run(cfg: TrainConfig, **kwargs):
    """Build everything from ``cfg.seed`` and train (``kwargs``: see :func:`build`); returns ``(summary, model)``."""
    trainer, model = build(cfg, **kwargs)
    return trainer.fit(), model


@contextlib.contextmanager
def one_thread():
    """Same intra-op thread count in every compared run (float sums are then reproducible)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def _record_writes_under(root: Path) -> list[list[str]]:
    root_s = str(root.resolve())
    writes: list[list[str]] = []
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND

    def hook(event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = args
            writing = any(c in mode for c in "wxa+") if isinstance(mode, str) else bool(flags & write_flags)
        elif event == "os.rename":  # also os.replace; record the destination
            path, writing = args[1], True
        elif event in ("os.remove", "os.mkdir"):
            path, writing = args[0], True
        else:
            return
        if writing and isinstance(path, (str, os.PathLike)) and os.path.abspath(path).startswith(root_s):
            writes.append([event, os.fspath(path)])

    sys.addaudithook(hook)
    return writes


def main(argv: list[str]) -> None:
    torch.set_num_threads(1)
    out = Path(argv[0])
    audit_dir = os.environ.get("TOY_AUDIT_DIR")
    writes = _record_writes_under(out) if audit_dir else None
    recipe = load_config(ToyRecipe, None, [f"train.out={out}", *argv[1:]])
    hang = os.environ.get("TOY_HANG_AFTER")
    _, model = run(recipe.train, n_train=recipe.n_train, n_val=recipe.n_val, dropout=recipe.dropout,
                   corrupt=recipe.corrupt, hang_after=int(hang) if hang else None, blocks=recipe.blocks)
    # the process group is gone after fit(); FSDP's sharded weights are gathered in last.pt instead
    if int(os.environ.get("RANK", "0")) == 0 and recipe.train.parallel == "ddp":
        torch.save(model.state_dict(), out / "final_weights.pt")
    if writes is not None:
        Path(audit_dir, f"writes_rank{os.environ.get('RANK', '0')}.json").write_text(json.dumps(writes))


if __name__ == "__main__":
    main(sys.argv[1:])
