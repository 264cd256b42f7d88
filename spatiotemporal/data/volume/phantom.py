"""Built-in CT-like abdominal phantom set in the decathlon layout, generated once on first use.

Each case is a NIfTI pair (``imagesTr/phantom_000.nii.gz`` int16 HU, ``labelsTr/phantom_000.nii.gz`` uint8)
on an anisotropic, rotated, LPS-like voxel grid with a non-zero origin, holding an elliptic body (fat rim,
soft tissue, spine, bowel with gas) and five labelled organs with random size, position and a smooth
deformation: 1 liver, 2 spleen, 3 kidney_l, 4 kidney_r, 5 aorta. The image gets partial-volume blur,
Gaussian noise and a smooth additive bias field. Geometry is defined in world (RAS) millimetres, so the
phantom is the same anatomy whatever the voxel grid.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy.ndimage import gaussian_filter

from ...utils.atomic import ensure_generated
from ..paths import cache_root
from .datalist import write_datalist
from .transforms import VolumeDataConfig

PHANTOM_VERSION = 3
PHANTOM_CLASS_NAMES = ["background", "liver", "spleen", "kidney_l", "kidney_r", "aorta"]
HU = {"air": -1000.0, "fat": -100.0, "soft": 40.0, "liver": 60.0, "spleen": 100.0, "kidney": 150.0,
      "aorta": 200.0, "bone": 700.0, "bowel": 20.0}


@dataclass(frozen=True)
class PhantomSpec:
    """Size of the generated set. Voxel grid per case: about ``shape`` voxels of ``spacing`` mm (jittered)."""

    n_train: int = 16
    n_val: int = 4
    shape: tuple[int, int, int] = (104, 100, 42)
    spacing: tuple[float, float, float] = (1.2, 1.2, 3.0)
    body_semi_axes: tuple[float, float] = (56.0, 44.0)
    noise_hu: float = 12.0
    bias_hu: float = 15.0
    seed: int = 20240607


def builtin_volume_config(**overrides) -> VolumeDataConfig:
    """Recommended pipeline for the phantom: 2.5 x 2.5 x 3 mm (body ~45 x 35 x 42 voxels), ROI 48^3.

    One crop per case covers the whole body after foreground crop + padding, so ``num_samples=1``.
    Left/right flips and rot90 are off: they would swap ``kidney_l`` and ``kidney_r``.
    """
    kw = dict(pixdim=(2.5, 2.5, 3.0), a_min=-175.0, a_max=250.0, roi=(48, 48, 48), num_samples=1,
              flip_prob=(0.0, 0.0, 0.0), rot90_prob=0.0, shift_offsets=0.1, shift_prob=0.5,
              cache="memory", cache_mib=1024.0)
    kw.update(overrides)
    return VolumeDataConfig(**kw)


def _rot(axis: int, deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    c, s = np.cos(a), np.sin(a)
    i, j = [(1, 2), (0, 2), (0, 1)][axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


def phantom_affine(rng: np.random.Generator, shape: tuple[int, int, int], spacing: tuple[float, float, float],
                   flip_z: bool) -> np.ndarray:
    """LPS-like voxel grid (i -> left, j -> posterior, k -> superior or inferior), small rotation, far origin."""
    zoom = np.asarray(spacing, float) * rng.uniform(0.95, 1.05, 3)
    direction = _rot(2, rng.uniform(-6, 6)) @ _rot(0, rng.uniform(-3, 3)) @ np.diag([-1.0, -1.0, -1.0 if flip_z
                                                                                     else 1.0])
    m = direction @ np.diag(zoom)
    center_world = np.array([rng.uniform(-30, 30), rng.uniform(-220, -150), rng.uniform(-480, -380)])
    aff = np.eye(4)
    aff[:3, :3] = m
    aff[:3, 3] = center_world - m @ ((np.asarray(shape) - 1) / 2.0)
    return aff


class _Field:
    """Smooth random field: sum of a few plane waves in world mm, ``(…, 3) -> (…)``."""

    def __init__(self, rng: np.random.Generator, n: int, wavelength: tuple[float, float], amp: float) -> None:
        dirs = rng.normal(size=(n, 3))
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        self.k = (dirs * (2 * np.pi / rng.uniform(*wavelength, size=(n, 1)))).astype(np.float32)
        self.phase = rng.uniform(0, 2 * np.pi, n).astype(np.float32)
        self.amp = (amp * rng.uniform(0.5, 1.0, n) / np.sqrt(n)).astype(np.float32)

    def __call__(self, p: np.ndarray) -> np.ndarray:
        return (np.sin(p @ self.k.T + self.phase) * self.amp).sum(-1)


def _ellipsoid(p: np.ndarray, center, semi, rot: np.ndarray | None = None) -> np.ndarray:
    """Normalised radius ``sum((R^T (p - c) / semi)^2)`` of an ellipsoid, ``(…, 3) -> (…)``."""
    q = p - np.asarray(center, np.float32)
    if rot is not None:
        q = q @ rot.astype(np.float32)
    return ((q / np.asarray(semi, np.float32)) ** 2).sum(-1)


def render_phantom(rng: np.random.Generator, world: np.ndarray, spec: PhantomSpec
                   ) -> tuple[np.ndarray, np.ndarray]:
    """HU image (float32) and label map (uint8) at world points ``world (X, Y, Z, 3)`` in RAS mm.

    Anatomy is laid out in body coordinates with x toward the patient's left, y anterior, z superior.
    """
    ax, ay = np.asarray(spec.body_semi_axes) * rng.uniform(0.93, 1.07, 2)
    p = world - world.reshape(-1, 3).mean(0) - np.array([rng.uniform(-3, 3), rng.uniform(-3, 3), 0.0])
    warp = [_Field(rng, 3, (90, 160), 3.0) for _ in range(3)]
    # deformed body coordinates for organ shapes, x flipped to point to the patient's left (RAS +x is right)
    pd = (p + np.stack([w(p) for w in warp], -1)) * np.array([-1.0, 1.0, 1.0], np.float32)
    x, y, z = pd[..., 0], pd[..., 1], pd[..., 2]

    img = np.full(p.shape[:-1], HU["air"], np.float32)
    lab = np.zeros(p.shape[:-1], np.uint8)
    body = (x / ax) ** 2 + (y / ay) ** 2 <= 1
    img[body] = HU["fat"]
    inner = (x / (ax - 5)) ** 2 + (y / (ay - 5)) ** 2 <= 1  # inside subcutaneous fat
    img[inner] = HU["soft"]  # abdominal wall muscle
    cavity = (x / (ax - 11)) ** 2 + (y / (ay - 11)) ** 2 <= 1
    img[cavity] = HU["fat"]  # intra-abdominal fat with soft-tissue patches (vessels, mesentery, muscle)
    img[cavity & (_Field(rng, 6, (25, 50), 1.0)(pd) > 0.0)] = HU["soft"]

    def organ(center, semi, jitter, scale=0.12, rot=None):
        c = np.asarray(center) + rng.uniform(-jitter, jitter, 3)
        s = np.asarray(semi) * rng.uniform(1 - scale, 1 + scale, 3)
        return _ellipsoid(pd, c, s, rot), c, s

    # unlabelled anatomy first, organs paint over it
    spine = (x / (0.17 * ax)) ** 2 + ((y + 0.56 * ay) / (0.17 * ax)) ** 2 <= 1
    img[spine & inner] = HU["bone"]
    for _ in range(int(rng.integers(3, 6))):  # bowel loops with gas
        r, c, s = organ((rng.uniform(-0.4, 0.4) * ax, rng.uniform(0.2, 0.55) * ay, rng.uniform(-40, 30)),
                        (9, 7, 10), 2.0, 0.25)
        loop = (r <= 1) & inner
        img[loop] = HU["bowel"]
        img[loop & (_ellipsoid(pd, c + [0, 0.5 * s[1], 0], s * 0.45) <= 1)] = HU["air"]
    stomach, c, s = organ((0.3 * ax, 0.4 * ay, 35), (14, 9, 14), 3.0)
    img[(stomach <= 1) & inner] = HU["bowel"]
    img[(stomach <= 1) & inner & (pd[..., 1] > c[1] + 0.4 * s[1])] = HU["air"]

    # 1 liver: ellipsoid thinning toward the patient's left (wedge)
    r, c, s = organ((-0.36 * ax, 0.1 * ay, 12), (0.42 * ax, 0.6 * ay, 36), 3.0)
    qx = np.clip((x - c[0]) / s[0], -1, 1)
    wedge = ((x - c[0]) / s[0]) ** 2 + ((y - c[1]) / (s[1] * (1 - 0.35 * qx))) ** 2 + ((z - c[2]) / s[2]) ** 2
    paint = [(wedge <= 1.08**2, 0, HU["fat"]), (wedge <= 1, 1, HU["liver"])]  # fat plane, then organ
    # 2 spleen, rotated about z
    r, _, _ = organ((0.66 * ax, -0.33 * ay, 30), (11, 15, 23), 2.5, rot=_rot(2, 35 + rng.uniform(-10, 10)))
    paint += [(r <= 1.15**2, 0, HU["fat"]), (r <= 1, 2, HU["spleen"])]
    # 3/4 kidneys: ellipsoids with a medial hilum notch filled with sinus fat
    for label, side, zc in ((3, 1.0, -14), (4, -1.0, -20)):
        rot = _rot(2, side * (-20 + rng.uniform(-8, 8)))
        r, c, s = organ((side * 0.47 * ax, -0.5 * ay, zc), (10, 13, 25), 2.5, rot=rot)
        hilum = _ellipsoid(pd, c - rot @ np.array([side * 0.85 * s[0], 0, 0]), s * np.array([0.5, 0.35, 0.3]))
        paint += [(r <= 1.3**2, 0, HU["fat"]), (r <= 1, label, HU["kidney"])]  # perirenal fat
        paint.append(((r <= 1) & (hilum <= 1), 0, HU["fat"]))
    # 5 aorta: tube along z, slightly bent
    cx = 0.1 * ax + rng.uniform(-2, 2) + 3 * np.sin(z / 60 + rng.uniform(0, 6.3))
    rad = 6.5 * rng.uniform(0.9, 1.1)
    tube = (x - cx) ** 2 + (y + 0.17 * ay) ** 2
    paint += [(tube <= (rad + 2) ** 2, 0, HU["fat"]), (tube <= rad**2, 5, HU["aorta"])]

    for mask, label, hu in paint:
        m = mask & inner
        img[m] = hu + rng.uniform(-4, 4) if label else hu
        lab[m] = label
    return img, lab


def _finish_image(rng: np.random.Generator, img: np.ndarray, world: np.ndarray, spacing: np.ndarray,
                  spec: PhantomSpec) -> np.ndarray:
    """Partial-volume blur (~1 mm), smooth bias field, Gaussian noise; int16 HU."""
    img = gaussian_filter(img, sigma=np.clip(0.9 / spacing, 0.2, 2.0))
    img = img + _Field(rng, 4, (150, 300), spec.bias_hu)(world).astype(np.float32)  # std ~0.55 bias_hu
    img = img + rng.normal(0.0, spec.noise_hu, img.shape).astype(np.float32)
    return np.clip(np.round(img), -1024, 3071).astype(np.int16)


def make_phantom_case(index: int, spec: PhantomSpec = PhantomSpec()) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Case ``index``: ``(image int16 (X, Y, Z) HU, label uint8 (X, Y, Z), affine (4, 4))``; deterministic."""
    rng = np.random.default_rng([spec.seed, index])
    shape = tuple(int(round(s * rng.uniform(0.94, 1.06))) for s in spec.shape)
    aff = phantom_affine(rng, shape, spec.spacing, flip_z=bool(index % 2))
    ijk = np.stack(np.meshgrid(*[np.arange(n, dtype=np.float32) for n in shape], indexing="ij"), -1)
    world = ijk @ aff[:3, :3].T.astype(np.float32) + aff[:3, 3].astype(np.float32)
    img, lab = render_phantom(rng, world, spec)
    img = _finish_image(rng, img, world, np.sqrt((aff[:3, :3] ** 2).sum(0)), spec)
    return img, lab, aff


def _nifti(data: np.ndarray, aff: np.ndarray) -> nib.Nifti1Image:
    im = nib.Nifti1Image(data, aff)
    im.header.set_xyzt_units("mm")
    im.set_qform(aff, code=1)
    im.set_sform(aff, code=1)
    return im


def write_case_files(root: Path, count: int, make_case, prefix: str) -> list[dict]:
    """``count`` cases of ``make_case(i) -> (image, label, affine)`` written as ``imagesTr/`` and ``labelsTr/``
    NIfTI files named ``<prefix>_<i:03d>.nii.gz`` under ``root``; their datalist entries (relative paths)."""
    (root / "imagesTr").mkdir(parents=True, exist_ok=True)
    (root / "labelsTr").mkdir(parents=True, exist_ok=True)
    entries = []
    for i in range(count):
        img, lab, aff = make_case(i)
        name = f"{prefix}_{i:03d}.nii.gz"
        nib.save(_nifti(img, aff), str(root / "imagesTr" / name))
        nib.save(_nifti(lab, aff), str(root / "labelsTr" / name))
        entries.append({"image": f"imagesTr/{name}", "label": f"labelsTr/{name}"})
    return entries


def write_phantom_dataset(root: str | Path, spec: PhantomSpec = PhantomSpec()) -> Path:
    """Write ``spec.n_train + spec.n_val`` cases and ``dataset_0.json`` into ``root`` (created)."""
    root = Path(root)
    entries = write_case_files(root, spec.n_train + spec.n_val, lambda i: make_phantom_case(i, spec), "phantom")
    write_datalist(root, entries[: spec.n_train], entries[spec.n_train:], PHANTOM_CLASS_NAMES,
                   name="spatiotemporal-builtin-volume", description="CT-like abdominal phantom (synthetic)",
                   modality={"0": "CT"}, licence="Apache-2.0 (generated)", release=f"v{PHANTOM_VERSION}")
    return root


def _marker(spec: PhantomSpec) -> dict:
    return {"version": PHANTOM_VERSION, "spec": asdict(spec)}


def ensure_builtin_volume_dataset(cache_dir: str | Path | None = None, spec: PhantomSpec = PhantomSpec()) -> Path:
    """Return ``<cache_dir or $SPATIO_CACHE or ~/.cache/spatiotemporal>/builtin_volume``, generating it once.

    Generated through ``utils.atomic.ensure_generated`` with a JSON ``VERSION`` marker (version and ``spec``):
    an interrupted run never leaves a half-written dataset; a stale version or another spec is replaced.
    """
    parent = Path(cache_dir).expanduser() if cache_dir is not None else cache_root()
    marker = json.dumps(_marker(spec), indent=2, sort_keys=True) + "\n"
    return ensure_generated(parent / "builtin_volume", marker, lambda out: write_phantom_dataset(out, spec))
