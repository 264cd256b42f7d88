"""``spatio viz saliency``: a gradient-based map (input x gradient or Grad-CAM) of one model on a few samples,
overlaid on the frames / slices, written as PNG with ``.npz`` (maps) and ``.json`` (settings, mass per frame or
slice)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from ..utils.errors import UserInputError  # noqa: E402
from .attention import panels  # noqa: E402
from .attention_report import overlay  # noqa: E402
from .models import VizModel  # noqa: E402
from .report import sidecar_paths  # noqa: E402
from .saliency import mass_along, saliency_map  # noqa: E402
from .samples import VizSamples  # noqa: E402


def _name(samples: VizSamples, k: int) -> str:
    return str(samples.class_names[k]) if 0 <= k < len(samples.class_names) else str(k)


def saliency_report(vm: VizModel, samples: VizSamples, out: str | Path, device: str | torch.device = "cpu", *,
                    method: str = "input_x_gradient", stage: str | None = None, target: str = "pred",
                    alpha: float = 0.5) -> dict:
    """One row per sample: its frames (videos), image, or depth slices (volumes) with the map overlaid (each row
    scaled to its own maximum). Returns the JSON content."""
    png, npz, js = sidecar_paths(out)
    model = vm.model.eval()
    rows, maps, rep_samples = [], {}, []
    for i, (x, label) in enumerate(samples):
        m, k = saliency_map(model, x[None].to(device, torch.float32), method, stage, target, int(label))
        heat = torch.from_numpy(m).float()
        imgs, hmaps, titles = panels(x.cpu(), heat[None] if samples.kind == "image" else heat, samples.kind)
        rows.append((imgs, hmaps, titles, f"{_name(samples, int(label))} -> {_name(samples, k)}"))
        maps[f"saliency_{i}"] = m.astype(np.float32)
        rec = {"label": int(label), "class": _name(samples, int(label)), "target_class": k,
               "target_name": _name(samples, k), "shape": list(m.shape), "total": float(m.sum())}
        mass = mass_along(m, samples.kind)
        if mass is not None:
            rec["mass_per_frame" if samples.kind == "video" else "mass_per_slice"] = mass
        rep_samples.append(rec)
    if not rows:
        raise UserInputError(f"no samples in {samples.description}: nothing to draw")
    ncols = max(len(r[0]) for r in rows)
    fig, axes = plt.subplots(len(rows), ncols, figsize=(max(1.6 * ncols, 4.5), 1.8 * len(rows) + 0.5), dpi=100,
                             squeeze=False, layout="constrained")
    for r, (imgs, hmaps, titles, name) in enumerate(rows):
        peak = max(float(h.max()) for h in hmaps)  # one scale per row, so frames / slices compare
        for c in range(ncols):
            ax = axes[r, c]
            ax.axis("off")
            if c < len(imgs):
                ax.imshow(overlay(imgs[c], hmaps[c], alpha, peak))
                ax.set_title(f"{name}\n{titles[c]}" if c == 0 else f"\n{titles[c]}", fontsize=7)
    where = f", {stage}" if stage else ""
    fig.suptitle(f"{method}{where} (target {target}; label -> target class)\n{vm.label} [{vm.mixer}]", fontsize=9)
    fig.savefig(png)
    plt.close(fig)
    report = {"kind": samples.kind, "data": samples.description, "model": vm.label, "source": vm.source,
              "mixer": vm.mixer, "method": method, "stage": stage, "target": str(target),
              "png": str(png), "npz": str(npz), "samples": rep_samples}
    np.savez_compressed(npz, **maps)
    js.write_text(json.dumps(report, indent=2) + "\n")
    return report
