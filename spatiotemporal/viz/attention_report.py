"""``spatio viz attention``: attention rollout of one model on a few samples, overlaid on the frames / slices,
written as PNG (+ GIF) with ``.npz`` (maps) and ``.json`` (mass per frame or slice)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from ..utils.errors import UserInputError
from .attention import attention_rollout, panels, upsample_map  # noqa: E402
from .models import VizModel  # noqa: E402
from .report import sidecar_paths  # noqa: E402
from .samples import VizSamples  # noqa: E402

CMAP = "jet"


def overlay(img: np.ndarray, heat: np.ndarray, alpha: float, peak: float | None = None) -> np.ndarray:
    """RGB ``(H, W, 3)`` in [0, 1]: the image (gray or RGB) blended with the colour-mapped map (scaled to ``peak``,
    default its own max)."""
    rgb = np.repeat(img[..., None], 3, -1) if img.ndim == 2 else img
    peak = float(heat.max()) if peak is None else peak
    colored = plt.get_cmap(CMAP)(np.clip(heat / max(peak, 1e-12), 0, 1))[..., :3]
    return (1 - alpha) * rgb + alpha * colored


def attention_report(vm: VizModel, samples: VizSamples, out: str | Path, device: str | torch.device = "cpu",
                     alpha: float = 0.5, gif: bool = False, gif_ms: int = 250) -> dict:
    """One row per sample: its frames (videos), image, or depth slices (volumes) with the rollout overlaid.
    ``gif``: also ``out.gif``, the first sample's overlays as an animation. Returns the JSON content."""
    png, npz, js = sidecar_paths(out)
    model = vm.model.eval()
    rows, maps, rep_samples = [], {}, []
    for i, (x, label) in enumerate(samples):
        roll = attention_rollout(model, x[None].to(device, torch.float32))[0].cpu()
        shape = x.shape[1:] if x.ndim == 4 else (1, *x.shape[1:])
        heat = upsample_map(roll, shape).clamp(min=0)
        imgs, hmaps, titles = panels(x.cpu(), heat, samples.kind)
        rows.append((imgs, hmaps, titles, samples.class_names[label] if label < len(samples.class_names) else label))
        maps[f"rollout_{i}"] = roll.numpy()
        axis = -1 if samples.kind == "volume" else 0  # mass per slice (volumes: along D) or per frame
        mass = roll.sum(dim=tuple(d for d in range(3) if d != (axis % 3)))
        rep_samples.append({"label": int(label), "class": str(rows[-1][3]), "grid": list(roll.shape),
                            "mass_per_frame" if samples.kind != "volume" else "mass_per_slice":
                            [round(float(v), 4) for v in mass]})
    if not rows:
        raise UserInputError(f"no samples in {samples.description}: nothing to draw")
    ncols = max(len(r[0]) for r in rows)
    fig, axes = plt.subplots(len(rows), ncols, figsize=(1.6 * ncols, 1.8 * len(rows) + 0.5), dpi=100,
                             squeeze=False, layout="constrained")
    for r, (imgs, hmaps, titles, name) in enumerate(rows):
        for c in range(ncols):
            ax = axes[r, c]
            ax.axis("off")
            if c < len(imgs):
                ax.imshow(overlay(imgs[c], hmaps[c], alpha))
                ax.set_title(f"{name}: {titles[c]}" if c == 0 else titles[c], fontsize=8)
    fig.suptitle(f"attention rollout: {vm.label} [{vm.mixer}]", fontsize=10)
    fig.savefig(png)
    plt.close(fig)
    report = {"kind": samples.kind, "data": samples.description, "model": vm.label, "source": vm.source,
              "mixer": vm.mixer, "method": "attention rollout (heads averaged, 0.5 identity, divided: S @ T per block)",
              "png": str(png), "npz": str(npz), "samples": rep_samples}
    if gif:
        from PIL import Image

        imgs, hmaps, _, _ = rows[0]
        frames = [Image.fromarray((overlay(im, hm, alpha) * 255).astype(np.uint8)) for im, hm in zip(imgs, hmaps)]
        frames = [f.resize((max(128, f.width), max(128, f.height)), Image.NEAREST) for f in frames]
        gif_path = png.with_suffix(".gif")
        frames[0].save(gif_path, save_all=True, append_images=frames[1:], duration=gif_ms, loop=0)
        report["gif"] = str(gif_path)
    np.savez_compressed(npz, **maps)
    js.write_text(json.dumps(report, indent=2) + "\n")
    return report
