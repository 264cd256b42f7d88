"""BraTS tumour regions (TC, WT, ET) from a sub-region label map, and back.

The regions nest: ET (enhancing tumour) ⊂ TC (tumour core) ⊂ WT (whole tumour). Which label values make each
region depends on the dataset's convention (``REGION_LABELS``): MSD Task01 labels 1 edema, 2 non-enhancing,
3 enhancing (SegFormer3D's mapping, recipes.md); BraTS 2018-2021 labels 1 necrotic core, 2 edema, 4 enhancing.
"""

from __future__ import annotations

import torch

REGION_NAMES = ("TC", "WT", "ET")
REGION_LABELS: dict[str, dict[str, tuple[int, ...]]] = {
    "msd": {"TC": (2, 3), "WT": (1, 2, 3), "ET": (3,)},
    "brats": {"TC": (1, 4), "WT": (1, 2, 4), "ET": (4,)},  # = MONAI ConvertToMultiChannelBasedOnBratsClasses
}
#: Label written for each region when a region map goes back to a label map, painted WT, then TC, then ET:
#: MSD: WT minus TC -> 1 (edema), TC minus ET -> 2 (non-enhancing), ET -> 3; BraTS: 2, 1, 4.
REGION_PAINT: dict[str, tuple[tuple[str, int], ...]] = {
    "msd": (("WT", 1), ("TC", 2), ("ET", 3)),
    "brats": (("WT", 2), ("TC", 1), ("ET", 4)),
}


def labels_to_regions(label: torch.Tensor, convention: str = "msd") -> torch.Tensor:
    """Label map ``(B, 1, *spatial)`` (or ``(1, *spatial)``) -> region masks ``(B, 3, *spatial)`` (or
    ``(3, *spatial)``), float 0/1 in the order TC, WT, ET."""
    # MONAI's converter (ConvertToMultiChannelBasedOnBratsClasses) hard-codes BraTS's 1/2/4; MSD Task01 is 1/2/3.
    lab = torch.round(torch.as_tensor(label)).long()
    out = [torch.isin(lab, torch.tensor(REGION_LABELS[convention][r], device=lab.device)) for r in REGION_NAMES]
    return torch.cat(out, dim=-4 if lab.ndim >= 5 else 0).float()


def regions_to_labels(regions: torch.Tensor, convention: str = "msd") -> torch.Tensor:
    """Binary region masks ``(..., 3, *spatial)`` (TC, WT, ET) -> a label map ``(..., 1, *spatial)`` in the dataset's
    convention, painted WT, then TC, then ET (see ``REGION_PAINT``), so ET wins where regions disagree."""
    r = torch.as_tensor(regions) > 0.5
    ch = r.ndim - 4
    out = torch.zeros_like(r.narrow(ch, 0, 1), dtype=torch.long)
    for name, value in REGION_PAINT[convention]:
        out[r.narrow(ch, REGION_NAMES.index(name), 1)] = value
    return out
