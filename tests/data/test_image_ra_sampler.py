"""Repeated-augmentation sampler: coverage over ranks, DeiT truncation, determinism, exact mid-epoch resume."""

from __future__ import annotations

import json
import os
import socket
from collections import Counter

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from timm.data.distributed_sampler import RepeatAugSampler
from torch.utils.data import DataLoader

from spatiotemporal.data.image import RASampler
from spatiotemporal.data.samplers import MidEpochResume


def _orders(n: int, world: int, **kw) -> list[list[int]]:
    return [RASampler(range(n), num_replicas=world, rank=r, **kw).rank_indices() for r in range(world)]


def test_union_of_ranks_covers_each_index_num_repeats_times():
    for n, world, repeats in ((10, 2, 3), (12, 3, 3), (7, 1, 2)):
        orders = _orders(n, world, num_repeats=repeats, round_to=None, seed=5)
        assert all(len(o) == n * repeats // world for o in orders)
        assert Counter(i for o in orders for i in o) == {i: repeats for i in range(n)}


def test_repeats_go_to_different_ranks():
    # DeiT deals the 3 consecutive copies round-robin: with 3 ranks every rank sees each index once
    for order in _orders(12, 3, num_repeats=3, round_to=None):
        assert sorted(order) == list(range(12))


def test_padding_when_not_divisible():
    orders = _orders(5, 2, num_repeats=3, round_to=None)  # 15 copies padded to 16
    counts = Counter(i for o in orders for i in o)
    assert sum(counts.values()) == 16 and all(counts[i] >= 3 for i in range(5))


def test_deit_truncation_and_configurable_round_to():
    s = RASampler(range(600), num_repeats=3, num_replicas=2, rank=1)
    assert len(s) == 600 // 256 * 256 // 2 == 256
    full = RASampler(range(600), num_repeats=3, num_replicas=2, rank=1, round_to=None)
    assert len(full) == 900 and s.rank_indices() == full.rank_indices()[:256]  # truncation keeps a prefix
    assert len(RASampler(range(100), num_replicas=2, rank=0, round_to=1)) == 50
    assert len(RASampler(range(100), num_replicas=2, rank=0)) == 50  # 100 < 256: timm keeps ceil(100 / 2)
    with pytest.raises(ValueError, match="round_to"):
        RASampler(range(1), num_replicas=2, rank=0, round_to=1)  # nothing left for a rank


def test_deterministic_per_seed_and_epoch():
    a, b = RASampler(range(50), seed=1, round_to=1), RASampler(range(50), seed=1, round_to=1)
    assert list(a) == list(b)
    e0 = list(a)
    a.set_epoch(1)
    assert list(a) != e0 and sorted(list(a)) != list(range(50))  # repeats, not a permutation
    a.set_epoch(0)
    assert list(a) == e0
    assert list(RASampler(range(50), seed=2, round_to=1)) != e0
    ordered = RASampler(range(6), num_repeats=2, shuffle=False, round_to=None)
    assert list(ordered) == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]


def test_set_start_skips_exactly_and_set_epoch_resets_it():
    s = RASampler(range(40), num_repeats=3, num_replicas=2, rank=1, seed=3, round_to=1)
    s.set_epoch(4)
    whole = list(s)
    s.set_start(7)
    assert list(s) == whole[7:] and len(s) == len(whole) == 20
    s.set_epoch(4)
    assert list(s) == whole  # set_epoch resets the start (the sampler protocol of data.samplers)
    s.set_start(len(s))
    assert list(s) == []
    state = s.state_dict()
    resumed = RASampler(range(40), num_repeats=3, num_replicas=2, rank=1, seed=3, round_to=1)
    resumed.load_state_dict(state)
    assert (resumed.epoch, resumed.start) == (4, 20) and list(resumed) == []
    with pytest.raises(ValueError):
        s.set_start(len(s) + 1)


def test_mid_epoch_resume_through_a_dataloader():
    def batches(start: int) -> list[list[int]]:
        s = RASampler(range(64), num_repeats=3, seed=0, round_to=1)
        assert isinstance(s, MidEpochResume) and isinstance(s, RepeatAugSampler)
        s.set_epoch(2)
        s.set_start(start)
        return [b.tolist() for b in DataLoader(range(64), batch_size=4, sampler=s)]

    uninterrupted = batches(0)
    assert batches(12) == uninterrupted[3:]


def _rank_worker(rank: int, world: int, port: int, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        s = RASampler(range(10), num_repeats=3, seed=9, round_to=None)  # rank / world from torch.distributed
        s.set_epoch(1)
        with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
            json.dump({"rank": s.rank, "world": s.world_size, "order": list(s)}, f)
    finally:
        dist.destroy_process_group()


def test_rank_and_world_from_torch_distributed(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mp.start_processes(_rank_worker, args=(2, port, str(tmp_path)), nprocs=2, join=True, start_method="fork")
    got = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert [(g["rank"], g["world"]) for g in got] == [(0, 2), (1, 2)]
    for g in got:
        expected = RASampler(range(10), num_repeats=3, num_replicas=2, rank=g["rank"], seed=9, round_to=None)
        expected.set_epoch(1)
        assert g["order"] == expected.rank_indices()
    assert Counter(i for g in got for i in g["order"]) == {i: 3 for i in range(10)}
    assert torch.distributed.is_initialized() is False


def test_orders_are_timms_repeat_aug_sampler_drawn_from_seed_plus_epoch():
    for n, world, repeats, round_to in ((600, 2, 3, 256), (40, 3, 3, 1), (10, 2, 2, 256)):
        for rank in range(world):
            ours = RASampler(range(n), repeats, world, rank, seed=7, round_to=round_to)
            ref = RepeatAugSampler(range(n), world, rank, num_repeats=repeats, selected_round=round_to)
            ours.set_epoch(2)
            ref.set_epoch(7 + 2)
            assert list(ours) == list(ref) and len(ours) == len(ref)
