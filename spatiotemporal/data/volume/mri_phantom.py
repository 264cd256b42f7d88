"""Built-in multi-channel brain MRI phantom set in the MSD Task01 layout, generated once on first use.

Each case is a 4D NIfTI ``imagesTr/mri_000.nii.gz`` int16 ``(X, Y, Z, 4)`` (channels last, as MSD: FLAIR, T1w,
T1gd, T2w) and a label map ``labelsTr/mri_000.nii.gz`` uint8 ``(X, Y, Z)`` with MSD Task01's values: 1 edema,
2 non-enhancing tumour, 3 enhancing tumour. The tumour is nested (edema ⊃ core ⊃ enhancing rim around a
non-enhancing centre), so the BraTS regions are TC = 2 ∪ 3, WT = 1 ∪ 2 ∪ 3, ET = 3. Each tissue has its own
contrast per channel (edema bright on FLAIR/T2, the rim bright on T1gd only, CSF dark on FLAIR); the
background outside the head is exactly 0 (what a z-score on non-zero voxels expects). Voxels are anisotropic,
1 x 1 x 2.5 mm on an LPS-like grid; ``dataset.json`` carries ``modality`` and ``training`` / ``validation``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter

from ...utils.atomic import ensure_generated
from ..paths import cache_root
from .datalist import write_datalist
from .phantom import write_case_files

MRI_PHANTOM_VERSION = 1
MRI_CHANNELS = ("FLAIR", "T1w", "t1gd", "T2w")  # MSD Task01's modality names and order
MRI_CLASS_NAMES = ["background", "edema", "non-enhancing tumor", "enhancing tumour"]  # MSD Task01's labels
MRI_JSON_NAME = "dataset.json"
#: Relative signal of each tissue per channel (FLAIR, T1w, T1gd, T2w).
CONTRAST = {
    "wm": (0.55, 0.80, 0.80, 0.35),
    "gm": (0.65, 0.60, 0.60, 0.50),
    "csf": (0.10, 0.20, 0.20, 1.00),
    "edema": (1.00, 0.50, 0.50, 0.85),
    "necrosis": (0.40, 0.35, 0.35, 0.95),
    "enhancing": (0.75, 0.55, 1.30, 0.70),
}
CHANNEL_SCALE = (400.0, 600.0, 650.0, 900.0)  # each channel in its own intensity range, as scanners give


@dataclass(frozen=True)
class MriPhantomSpec:
    """Size of the generated set: ``shape`` voxels of ``spacing`` mm per case."""

    n_train: int = 8
    n_val: int = 2
    shape: tuple[int, int, int] = (48, 48, 32)
    spacing: tuple[float, float, float] = (1.0, 1.0, 2.5)
    noise: float = 0.03
    seed: int = 20261208


def _ellipsoid(p: np.ndarray, center: np.ndarray, semi: np.ndarray) -> np.ndarray:
    return (((p - center) / semi) ** 2).sum(-1)


def mri_affine(shape: tuple[int, int, int], spacing: tuple[float, float, float]) -> np.ndarray:
    """LPS-like grid (i -> left, j -> posterior, k -> superior) centred on the world origin."""
    m = np.diag([-spacing[0], -spacing[1], spacing[2]])
    aff = np.eye(4)
    aff[:3, :3] = m
    aff[:3, 3] = -m @ ((np.asarray(shape) - 1) / 2.0)
    return aff


def make_mri_case(index: int, spec: MriPhantomSpec = MriPhantomSpec()) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Case ``index``: ``(image int16 (X, Y, Z, 4), label uint8 (X, Y, Z), affine (4, 4))``; deterministic."""
    rng = np.random.default_rng([spec.seed, index])
    aff = mri_affine(spec.shape, spec.spacing)
    ijk = np.stack(np.meshgrid(*[np.arange(n, dtype=np.float32) for n in spec.shape], indexing="ij"), -1)
    p = ijk @ aff[:3, :3].T.astype(np.float32) + aff[:3, 3].astype(np.float32)  # world mm, (X, Y, Z, 3)
    extent = np.asarray(spec.shape) * np.asarray(spec.spacing)
    brain_semi = extent * np.array([0.40, 0.44, 0.40]) * rng.uniform(0.92, 1.0, 3)
    brain = _ellipsoid(p, np.zeros(3), brain_semi)
    code = {name: i + 1 for i, name in enumerate(CONTRAST)}  # 0: outside the head
    tissue = np.zeros(spec.shape, np.uint8)
    lab = np.zeros(spec.shape, np.uint8)
    tissue[brain <= 1] = code["wm"]
    tissue[(brain <= 1) & (brain > 0.72)] = code["gm"]  # cortex rim
    ventricles = _ellipsoid(p, np.array([0.0, 0.0, 0.1 * brain_semi[2]]), brain_semi * [0.18, 0.35, 0.22])
    tissue[ventricles <= 1] = code["csf"]
    # nested tumour: edema ⊃ tumour core; the core is an enhancing rim around a non-enhancing centre
    center = rng.uniform(-0.35, 0.35, 3) * brain_semi
    r_edema = rng.uniform(9.0, 12.0) * rng.uniform(0.85, 1.15, 3)
    r_core = r_edema * rng.uniform(0.5, 0.6)
    warp = rng.normal(0, 0.08, 3)
    bump = 1 + (np.sin(p @ (warp * 4)) * 0.1)
    edema = (_ellipsoid(p, center, r_edema) * bump <= 1) & (brain <= 1)
    core = (_ellipsoid(p, center, r_core) <= 1) & edema
    necrosis = (_ellipsoid(p, center, r_core * 0.7) <= 1) & core
    for mask, name, value in ((edema, "edema", 1), (core, "enhancing", 3), (necrosis, "necrosis", 2)):
        tissue[mask] = code[name]
        lab[mask] = value
    head = brain <= 1
    img = np.zeros((*spec.shape, len(MRI_CHANNELS)), np.float32)
    for name, contrast in CONTRAST.items():
        img[tissue == code[name]] = contrast
    img = gaussian_filter(img, sigma=(0.7, 0.7, 0.3, 0))  # partial volume
    bias = 1 + 0.1 * np.sin(p @ rng.normal(0, 0.03, 3))[..., None]  # smooth coil field
    img = img * bias + rng.normal(0, spec.noise, img.shape).astype(np.float32)
    img = np.clip(img, 0.01, None) * np.asarray(CHANNEL_SCALE, np.float32)
    img[~head] = 0.0
    return np.round(img).astype(np.int16), lab, aff


def write_mri_phantom_dataset(root: str | Path, spec: MriPhantomSpec = MriPhantomSpec()) -> Path:
    """Write ``spec.n_train + spec.n_val`` cases and an MSD ``dataset.json`` into ``root`` (created)."""
    root = Path(root)
    entries = write_case_files(root, spec.n_train + spec.n_val, lambda i: make_mri_case(i, spec), "mri")
    write_datalist(root, entries[: spec.n_train], entries[spec.n_train:], MRI_CLASS_NAMES, json_name=MRI_JSON_NAME,
                   name="spatiotemporal-builtin-mri", description="Multi-channel brain MRI tumour phantom (synthetic)",
                   modality={str(i): c for i, c in enumerate(MRI_CHANNELS)}, tensorImageSize="4D",
                   licence="Apache-2.0 (generated)", release=f"v{MRI_PHANTOM_VERSION}")
    return root


def ensure_builtin_mri_dataset(cache_dir: str | Path | None = None, spec: MriPhantomSpec = MriPhantomSpec()) -> Path:
    """``<cache_dir or the cache root>/builtin_mri``, generated once (atomically, versioned like the CT set)."""
    parent = Path(cache_dir).expanduser() if cache_dir is not None else cache_root()
    marker = json.dumps({"version": MRI_PHANTOM_VERSION, "spec": asdict(spec)}, indent=2, sort_keys=True) + "\n"
    return ensure_generated(parent / "builtin_mri", marker, lambda out: write_mri_phantom_dataset(out, spec))
