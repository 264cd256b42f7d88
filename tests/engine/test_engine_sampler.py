"""ResumableSampler: DistributedSampler semantics plus set_start."""

from __future__ import annotations

import pytest
from torch.utils.data import DistributedSampler

from spatiotemporal.data.samplers import ResumableSampler


@pytest.mark.parametrize("n,world,shuffle,drop_last", [(10, 3, True, False), (10, 3, True, True),
                                                        (12, 4, False, False), (7, 2, True, False)])
def test_matches_distributed_sampler(n, world, shuffle, drop_last):
    data = list(range(n))
    for epoch in (0, 3):
        for rank in range(world):
            ref = DistributedSampler(data, num_replicas=world, rank=rank, shuffle=shuffle, seed=5,
                                     drop_last=drop_last)
            ref.set_epoch(epoch)
            ours = ResumableSampler(n, shuffle=shuffle, seed=5, rank=rank, world_size=world, drop_last=drop_last)
            ours.set_epoch(epoch)
            assert list(ours) == list(ref) and len(ours) == len(ref)
    assert isinstance(ours, DistributedSampler)


def test_set_start_skips_and_resets_on_epoch():
    s = ResumableSampler(20, shuffle=True, seed=1, rank=1, world_size=2)
    s.set_epoch(2)
    full = list(s)
    s.set_start(4)
    assert list(s) == full[4:] and len(s) == 10  # __len__ stays the full-epoch length
    s.set_epoch(2)
    assert list(s) == full
    s.set_epoch(3)
    assert list(s) != full  # a new permutation per epoch
    with pytest.raises(ValueError):
        s.set_start(11)


def test_unpadded_eval_split_covers_each_sample_once():
    parts = [list(ResumableSampler(7, shuffle=False, rank=r, world_size=3, pad=False)) for r in range(3)]
    assert sorted(i for p in parts for i in p) == list(range(7))
    assert [len(p) for p in parts] == [3, 2, 2]
