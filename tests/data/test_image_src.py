"""Simple Random Crop geometry and equality with torchvision's Resize + RandomCrop(padding=4, reflect)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision.transforms as T
from PIL import Image

from spatiotemporal.data.image import SimpleRandomCrop

SIZE = 24
SHAPES = {"landscape": (50, 30), "portrait": (30, 50), "square": (40, 40)}


def _noise(w: int, h: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8), "RGB")


@pytest.mark.parametrize("kind", SHAPES)
def test_resize_keeps_aspect_ratio_short_side_is_size(kind):
    w, h = SHAPES[kind]
    src = SimpleRandomCrop(SIZE, padding=4)
    rw, rh = src.resized_size(w, h)
    assert min(rw, rh) == SIZE
    assert max(rw, rh) == int(SIZE * max(w, h) / min(w, h))
    assert abs(rw / rh - w / h) < 1.0 / SIZE  # aspect ratio kept up to the integer rounding
    assert (rw >= rh) == (w >= h)  # orientation kept
    assert src.padded_size(w, h) == (rw + 8, rh + 8)


@pytest.mark.parametrize("kind", SHAPES)
def test_crop_box_stays_inside_padded_image_and_covers_all_offsets(kind):
    w, h = SHAPES[kind]
    src = SimpleRandomCrop(SIZE, padding=4)
    pw, ph = src.padded_size(w, h)
    torch.manual_seed(0)
    tops, lefts = set(), set()
    for _ in range(400):
        top, left, bh, bw = src.crop_box(w, h)
        assert (bh, bw) == (SIZE, SIZE)
        assert 0 <= top and top + bh <= ph and 0 <= left and left + bw <= pw
        tops.add(top)
        lefts.add(left)
    assert tops == set(range(ph - SIZE + 1)) and lefts == set(range(pw - SIZE + 1))


@pytest.mark.parametrize("kind", SHAPES)
def test_output_size_and_equality_with_torchvision(kind):
    w, h = SHAPES[kind]
    img = _noise(w, h, seed=len(kind))
    src = SimpleRandomCrop(SIZE, padding=4, interpolation="bicubic")
    ref = T.Compose([
        T.Resize(SIZE, interpolation=T.InterpolationMode.BICUBIC),
        T.RandomCrop(SIZE, padding=4, padding_mode="reflect"),
    ])
    crops = set()
    for seed in range(8):
        torch.manual_seed(seed)
        ours = src(img)
        torch.manual_seed(seed)
        theirs = ref(img)
        assert ours.size == (SIZE, SIZE)
        assert np.array_equal(np.asarray(ours), np.asarray(theirs))
        crops.add(np.asarray(ours).tobytes())
    assert len(crops) > 4


def test_crop_content_is_the_box_of_the_reflect_padded_resize():
    img = _noise(36, 24, seed=3)
    src = SimpleRandomCrop(SIZE, padding=4)
    torch.manual_seed(5)
    top, left, _, _ = src.crop_box(*img.size)
    padded = np.pad(np.asarray(img.resize(src.resized_size(*img.size), Image.BICUBIC)),
                    ((4, 4), (4, 4), (0, 0)), mode="reflect")
    torch.manual_seed(5)
    assert np.array_equal(np.asarray(src(img)), padded[top : top + SIZE, left : left + SIZE])


def test_padding_must_be_smaller_than_size():
    with pytest.raises(ValueError, match="padding"):
        SimpleRandomCrop(4, padding=4)
