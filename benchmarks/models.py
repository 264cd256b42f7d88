"""Speed and memory of spatiotemporal's models against their peers, two comparisons in one run.

Configs (ours vs peer):
- ``vit``: ``create_model("vit_small_patch16_224")`` vs timm ``vit_small_patch16_224``, batch 8, 224 px.
- ``timesformer``: ``create_model("timesformer_small", mixer=...)`` (the official space-only model is
  ``mixer="joint", framewise=True``) vs the official TimeSformer
  ``VisionTransformer`` (ViT-S, 8 x 112, patch 16; loaded by ``_peer_timesformer.py`` from
  ``--timesformer-src``), divided / joint / space_only, batch 2; and ``timesformer_base`` (ViT-B, 8 x 224,
  divided, the paper's model) vs the official one, batch 1.
- ``unetr``: ``create_model("unetr_base")`` vs MONAI ``UNETR(1, 14, (96, 96, 96))``, batch 1.
- ``mvit``: ``create_model("mvit_v2_s")`` vs torchvision ``mvit_v2_s()``, 16 x 224, batch 1 (not in the default
  ``--only``; its results go to ``results/models_mvit_cpu.{json,md}``).

Adding a model: a :class:`Family` (how to build ours and the peer) in ``FAMILIES`` and its :class:`Config`
rows in ``CONFIGS``; nothing else changes (``--only`` takes the family name).

Comparisons (each cell is a fresh process; cells shared between comparisons are measured once):
- **identical**: ours and the peer at the same settings: ``--dtype`` (fp32 on CPU), eager, ours with the
  model's default activation checkpointing (none).
- **defaults**: each as it comes out of the box: ours at the trainer's default precision ``amp=auto``
  (``spatiotemporal.engine.precision.amp_dtype``: bf16 autocast on a CPU with native bf16, fp32 without),
  the peer as it ships (fp32, no autocast); and, to show where the gain comes from, the peer under the same
  autocast as ours (``peer+autocast``).

Protocol (``/work/shared/reference/peers_cpu.md``): every (config, impl, mode) measurement runs in a
fresh process (forked from a clean forkserver that has only imported the libraries, so start-up
costs seconds instead of ~20 s on a loaded 2-core VM); 2 threads, fp32, random init, fixed seed.
``fwd`` = ``eval()`` + ``inference_mode``; ``train`` = ``train()``, cross-entropy against random
labels (per voxel for UNETR), backward, ``AdamW(lr 1e-4, wd 0.05).step()``, ``zero_grad(set_to_none)``.
Warm-up (2 iterations, 1 if the first takes > 8 s), then ``--iters`` timed iterations; wall and
process-CPU time per iteration, and the cores other processes used during it (``/proc/stat``).
Ours and the peer are interleaved, ``--rounds`` times, the order alternating between rounds;
the ratio ours/peer is that of the medians over all timed iterations of all rounds.
peak+ = ``VmHWM`` (reset through ``/proc/self/clear_refs``) - ``VmRSS`` once model, input and
optimizer exist (CUDA: ``max_memory_allocated`` - ``memory_allocated``), in MiB.

Usage::

    python benchmarks/models.py --timesformer-src /work/peers/TimeSformer [--only vit,timesformer,unetr]
        [--rounds 2] [--iters 3] [--out benchmarks/results/models_cpu.json]
    python benchmarks/models.py --device cuda --dtype bf16 --threads 8 \
        --out benchmarks/results/models_cuda.json
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import json
import multiprocessing as mp
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

MiB = 1024 * 1024


@dataclass(frozen=True)
class Config:
    """One comparison: our model vs a peer on the same input."""

    name: str
    family: str  # a key of FAMILIES
    peer: str
    batch: int
    input_shape: tuple  # without the batch
    num_classes: int
    dense: bool = False  # labels per voxel (segmentation)
    attention: str | None = None
    size: str = "small"  # which of the family's models (the builders read it)


@dataclass(frozen=True)
class Family:
    """How to build our model (``ours(cfg, options)``; ``options`` are config overrides such as ``recompute``)
    and the peer's (``peer(cfg, timesformer_src)``), randomly initialised from the current seed."""

    ours: Callable
    peer: Callable
    needs_src: bool = False  # the peer needs --timesformer-src


def _ours_vit(cfg: Config, options: dict):
    from spatiotemporal import create_model

    return create_model("vit_small_patch16_224", **options)


def _peer_vit(cfg: Config, src):
    import timm

    return timm.create_model("vit_small_patch16_224")


def _ours_timesformer(cfg: Config, options: dict):
    from spatiotemporal import create_model

    mixer = {"space_only": {"mixer": "joint", "framewise": True}}.get(cfg.attention, {"mixer": cfg.attention})
    return create_model(f"timesformer_{cfg.size}", num_classes=cfg.num_classes, **mixer, **options)


def _peer_timesformer(cfg: Config, src):
    from _peer_timesformer import build_official_timesformer

    if not src:
        raise ValueError("the official TimeSformer needs --timesformer-src")
    dims = {"small": {}, "base": dict(img_size=224, embed_dim=768, num_heads=12)}[cfg.size]
    return build_official_timesformer(src, cfg.attention, num_classes=cfg.num_classes, **dims)


def _ours_unetr(cfg: Config, options: dict):
    from spatiotemporal import create_model

    return create_model("unetr_base", **options)


def _peer_unetr(cfg: Config, src):
    from monai.networks.nets import UNETR

    return UNETR(1, 14, (96, 96, 96))


def _ours_mvit(cfg: Config, options: dict):
    from spatiotemporal import create_model

    return create_model("mvit_v2_s", **options)


def _peer_mvit(cfg: Config, src):
    from torchvision.models.video import mvit_v2_s

    return mvit_v2_s()


def _ours_pvt(cfg: Config, options: dict):
    from spatiotemporal import create_model

    return create_model("pvt_v2_b0", **options)


def _peer_pvt(cfg: Config, src):
    import timm

    return timm.create_model("pvt_v2_b0")


FAMILIES: dict[str, Family] = {
    "vit": Family(_ours_vit, _peer_vit),
    "pvt": Family(_ours_pvt, _peer_pvt),
    "timesformer": Family(_ours_timesformer, _peer_timesformer, needs_src=True),
    "unetr": Family(_ours_unetr, _peer_unetr),
    "mvit": Family(_ours_mvit, _peer_mvit),
}

CONFIGS = [
    Config("vit_s16_224", "vit", "timm vit_small_patch16_224", 8, (3, 224, 224), 1000),
    *(
        Config(
            f"timesformer_s_8x112_{a}",
            "timesformer",
            f"official TimeSformer ({a})",
            2,
            (3, 8, 112, 112),
            400,
            attention=a,
        )
        for a in ("divided", "joint", "space_only")
    ),
    Config("timesformer_b_8x224_divided", "timesformer", "official TimeSformer (divided, ViT-B)", 1,
           (3, 8, 224, 224), 400, attention="divided", size="base"),
    Config("unetr_96", "unetr", "MONAI UNETR(1, 14, (96,)*3)", 1, (1, 96, 96, 96), 14, dense=True),
    Config("mvit_v2_s_16x224", "mvit", "torchvision mvit_v2_s", 1, (3, 16, 224, 224), 400),
    Config("pvt_v2_b0_224", "pvt", "timm pvt_v2_b0 (SegFormer's MiT-B0 encoder)", 8, (3, 224, 224), 1000),
]
CONFIG_BY_NAME = {c.name: c for c in CONFIGS}


def build_model(cfg: Config, impl: str, timesformer_src: str | None, options: dict | None = None):
    """Our model (``impl="ours"``, with config ``options``) or the peer's, randomly initialised from the seed."""
    fam = FAMILIES[cfg.family]
    return fam.ours(cfg, options or {}) if impl == "ours" else fam.peer(cfg, timesformer_src)


# ----------------------------------------------------------------------------- settings and comparisons


def auto_amp(device: str) -> str:
    """What the trainer's default ``amp=auto`` resolves to here: ``fp32``, ``bf16`` or ``fp16``."""
    import torch

    from spatiotemporal.engine.precision import amp_dtype

    dt = amp_dtype("auto", torch.device(device))
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dt]


def comparisons(dtype: str, auto: str) -> dict[str, tuple[tuple[str, str], tuple[str, str]]]:
    """Comparison name -> ((impl, precision) of ours, (impl, precision) of the peer); a comparison of the same
    cells as an earlier one (e.g. ``amp=auto`` is fp32 on a CPU without native bf16) is left out."""
    comps = {
        "identical": (("ours", dtype), ("peer", dtype)),
        "defaults": (("ours", auto), ("peer", "fp32")),
        "defaults, peer+autocast": (("ours", auto), ("peer", auto)),
    }
    out: dict = {}
    for name, pair in comps.items():
        if pair not in out.values():
            out[name] = pair
    return out


# ----------------------------------------------------------------------------- machine probes


def _proc_stat() -> tuple[int, int]:
    """(busy, steal) jiffies of the whole machine."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = v[:8]
    return user + nice + system + irq + softirq, steal


def _own_jiffies() -> int:
    with open("/proc/self/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime (fields 14, 15)


class Contention:
    """Cores used by other processes (and stolen by the hypervisor) between ``start`` and ``stop``."""

    hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def start(self) -> None:
        self.ok = os.path.exists("/proc/stat")
        if self.ok:
            self.busy, self.steal = _proc_stat()
            self.own = _own_jiffies()

    def stop(self, wall: float) -> tuple[float | None, float | None]:
        if not self.ok or wall <= 0:
            return None, None
        busy, steal = _proc_stat()
        own = _own_jiffies()
        other = (busy - self.busy - (own - self.own)) / self.hz / wall
        return round(max(other, 0.0), 3), round((steal - self.steal) / self.hz / wall, 3)


def _status_kib(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


class PeakMemory:
    """peak+ in MiB: growth of the peak over the footprint at ``reset`` (RSS on CPU, allocator on CUDA)."""

    def __init__(self, device: str):
        self.cuda = device.startswith("cuda")

    def reset(self) -> None:
        import torch

        gc.collect()
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
        else:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # resets VmHWM to the current VmRSS
            self.base = _status_kib("VmRSS") * 1024

    def peak_plus(self) -> float:
        import torch

        if self.cuda:
            return (torch.cuda.max_memory_allocated() - self.base) / MiB
        return (_status_kib("VmHWM") * 1024 - self.base) / MiB


# ----------------------------------------------------------------------------- one measurement


def make_step(model, x, y, mode: str, device: str, dtype: str) -> tuple[Callable[[], None], object]:
    """``dtype``: ``fp32`` (no autocast), ``bf16`` or ``fp16`` (autocast)."""
    """The function timed per iteration, and the optimizer (train) or None."""
    import torch
    import torch.nn.functional as F

    amp = dtype != "fp32"
    dev_type = "cuda" if device.startswith("cuda") else "cpu"

    def autocast():
        return (
            torch.autocast(dev_type, dtype=torch.bfloat16 if dtype == "bf16" else torch.float16)
            if amp
            else contextlib.nullcontext()
        )

    if mode == "fwd":
        model.eval()

        def fwd() -> None:
            with torch.inference_mode(), autocast():
                model(x)

        return fwd, None
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)

    def train() -> None:
        with autocast():
            out = model(x)
        loss = F.cross_entropy(out.float(), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return train, opt


def tensor_peak_mib(step: Callable[[], None], model, opt) -> dict:
    """Peak of the live tensors during one more ``step``, by kind (torch's ``MemTracker``), in MiB.

    Exact and independent of the allocator (glibc keeps freed memory, so RSS peaks carry its history);
    ``peak_plus`` = the total minus parameters and buffers (gradients, optimiser state, activations, temporaries).
    """
    from torch.distributed._tools.mem_tracker import MemTracker

    tracker = MemTracker()
    tracker.track_external(*(m for m in (model, opt) if m is not None))
    with tracker:
        step()
    peaks = {}
    for dev_peaks in tracker.get_tracker_snapshot("peak").values():
        for k, v in dev_peaks.items():
            name = getattr(k, "value", k)
            peaks[name] = peaks.get(name, 0) + v / MiB
    out = {k: round(v, 1) for k, v in peaks.items()}
    out["peak_plus"] = round(peaks["Total"] - peaks.get("Parameter", 0) - peaks.get("Buffer", 0), 1)
    return out


def measure(spec: dict) -> dict:
    """Build, warm up, time and measure one (config, impl, mode) cell; runs in its own process.

    Optional keys: ``options`` (our model's config overrides), ``cpu_short_seq`` (our CPU matmul-attention
    threshold, ``spatiotemporal.layers.sdpa.CPU_SHORT_SEQ``), ``tensor_memory`` (one more, untimed step under
    :func:`tensor_peak_mib`).
    """
    import torch

    cfg = CONFIG_BY_NAME[spec["config"]]
    device, dtype = spec["device"], spec.get("precision", spec["dtype"])
    cuda = device.startswith("cuda")
    torch.set_num_threads(spec["threads"])
    if spec.get("cpu_short_seq") is not None:
        import spatiotemporal.layers.sdpa as sdpa

        sdpa.CPU_SHORT_SEQ = sdpa.CPU_SHORT_SEQ_BF16 = spec["cpu_short_seq"]
    torch.manual_seed(spec["seed"])
    model = build_model(cfg, spec["impl"], spec.get("timesformer_src"), spec.get("options")).to(device)
    g = torch.Generator().manual_seed(spec["seed"] + 1)
    x = torch.randn((cfg.batch, *cfg.input_shape), generator=g).to(device)
    label_shape = (cfg.batch, *cfg.input_shape[1:]) if cfg.dense else (cfg.batch,)
    y = torch.randint(0, cfg.num_classes, label_shape, generator=g).to(device)
    step, opt = make_step(model, x, y, spec["mode"], device, dtype)
    sync = torch.cuda.synchronize if cuda else (lambda: None)

    mem = PeakMemory(device)
    mem.reset()
    warm = []
    for _ in range(spec["warmup"]):
        t0 = time.perf_counter()
        step()
        sync()
        warm.append(time.perf_counter() - t0)
        if warm[0] > 8.0:  # slow cells: one warm-up is enough
            break
    walls, cpus, others, steals = [], [], [], []
    cont = Contention()
    for _ in range(spec["iters"]):
        cont.start()
        c0, t0 = time.process_time(), time.perf_counter()
        step()
        sync()
        wall = time.perf_counter() - t0
        cpus.append(time.process_time() - c0)
        walls.append(wall)
        o, s = cont.stop(wall)
        others.append(o)
        steals.append(s)
    peak = mem.peak_plus()
    tensor_peak = tensor_peak_mib(step, model, opt) if spec.get("tensor_memory") else None
    out = dict(
        spec,
        wall_s=walls,
        cpu_s=cpus,
        warmup_s=warm,
        other_cores=others,
        steal_cores=steals,
        peak_plus_mib=round(peak, 1),
        **({"tensor_peak_mib": tensor_peak} if tensor_peak else {}),
        params=sum(p.numel() for p in model.parameters()),
    )
    if spec.get("flops") and spec["mode"] == "fwd":
        from spatiotemporal.layers.flops import count_flops

        model.eval()
        with torch.inference_mode():
            # one sample, times the batch: every op here is per-sample, so the count is exact
            out["gflops"] = round(count_flops(lambda: model(x[:1])) * cfg.batch / 1e9, 2)
    return out


def _child(spec: dict, conn) -> None:
    try:
        conn.send(measure(spec))
    except BaseException as e:  # report, never hang the parent
        conn.send(dict(spec, error=f"{type(e).__name__}: {e}", traceback=traceback.format_exc()))
    finally:
        conn.close()


def run_isolated(ctx, spec: dict, timeout: float) -> dict:
    """``measure(spec)`` in a fresh process forked from the forkserver."""
    recv, send = ctx.Pipe(duplex=False)
    p = ctx.Process(target=_child, args=(spec, send))
    p.start()
    send.close()
    res = None
    if recv.poll(timeout):
        with contextlib.suppress(EOFError):
            res = recv.recv()
    p.join(10)
    if p.is_alive():
        p.kill()
        p.join()
    return res or dict(spec, error=f"no result (exit code {p.exitcode}, timeout {timeout:.0f} s)")


# ----------------------------------------------------------------------------- report


def _median(values: list) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


QUIET_CORES = 0.2  # an iteration is "quiet" when other processes used at most this many cores


def _quiet_median(runs: list[dict]) -> float | None:
    """Median wall time over quiet iterations, or None when fewer than 3 were quiet."""
    quiet = [
        w for r in runs for w, o in zip(r["wall_s"], r["other_cores"]) if o is not None and o <= QUIET_CORES
    ]
    return statistics.median(quiet) if len(quiet) >= 3 else None


def _precision(run: dict) -> str:
    return run.get("precision", run["dtype"])


def _stats(runs: list[dict], impl: str, precision: str) -> dict:
    """Medians over all timed iterations of the cells of one (impl, precision)."""
    ok = [r for r in runs if r["impl"] == impl and _precision(r) == precision and "error" not in r]
    return dict(
        precision=precision,
        wall_s=_median([w for r in ok for w in r["wall_s"]]),
        cpu_s=_median([c for r in ok for c in r["cpu_s"]]),
        peak_plus_mib=_median([r["peak_plus_mib"] for r in ok]),
        other_cores=_median([o for r in ok for o in r["other_cores"]]),
        steal_cores=_median([s for r in ok for s in r["steal_cores"]]),
        params=ok[0]["params"] if ok else None,
        gflops=next((r["gflops"] for r in ok if "gflops" in r), None),
        min_wall_s=min((w for r in ok for w in r["wall_s"]), default=None),
        quiet_wall_s=_quiet_median(ok),
        round_wall_s=[_median(r["wall_s"]) for r in ok],
        n_timed=sum(len(r["wall_s"]) for r in ok),
        errors=[r["error"] for r in runs if r["impl"] == impl and _precision(r) == precision and "error" in r],
    )


def summarize(runs: list[dict], comps: dict) -> list[dict]:
    """One row per (config, mode, comparison): medians over all rounds, ratios ours/peer, per-round ratios."""
    rows = []
    for cfg in CONFIGS:
        for mode in ("fwd", "train"):
            cell = [r for r in runs if r["config"] == cfg.name and r["mode"] == mode]
            for comp, ((_, o_prec), (_, p_prec)) in comps.items():
                o, p = _stats(cell, "ours", o_prec), _stats(cell, "peer", p_prec)
                if not (o["n_timed"] or o["errors"]) and not (p["n_timed"] or p["errors"]):
                    continue
                row: dict = dict(config=cfg.name, mode=mode, comparison=comp, peer=cfg.peer, batch=cfg.batch,
                                 input=[cfg.batch, *cfg.input_shape], ours=o, peer_cell=p)
                row["ratio_wall"] = _ratio(o["wall_s"], p["wall_s"])
                row["ratio_cpu"] = _ratio(o["cpu_s"], p["cpu_s"])
                row["ratio_min_wall"] = _ratio(o["min_wall_s"], p["min_wall_s"])
                row["ratio_quiet_wall"] = _ratio(o["quiet_wall_s"], p["quiet_wall_s"])
                row["ratio_peak"] = _ratio(o["peak_plus_mib"], p["peak_plus_mib"])
                row["round_ratios_wall"] = [_ratio(a, b) for a, b in zip(o["round_wall_s"], p["round_wall_s"])]
                rows.append(row)
    return rows


NOISE_BAND = 0.05
TARGETS = {"identical": 1.0, "defaults": 0.7}  # train-step time ratio ours / peer
MEMORY_TARGET = 0.8  # TimeSformer train peak+ ratio, all attention modes
UNETR_TARGET = 0.8  # UNETR train-step ratio at identical settings


def speed_verdict(ratio_wall: float | None, ratio_cpu: float | None) -> str:
    """ "ours faster" / "ours SLOWER" when wall and CPU ratios agree beyond the noise band, else a tie."""
    if ratio_wall is None or ratio_cpu is None:
        return "n/a"
    if ratio_wall < 1 - NOISE_BAND and ratio_cpu < 1 - NOISE_BAND:
        return "ours faster"
    if ratio_wall > 1 + NOISE_BAND and ratio_cpu > 1 + NOISE_BAND:
        return "ours SLOWER"
    return "tie (within noise)"


def _f(v, fmt: str = "{:.2f}") -> str:
    return "n/a" if v is None else fmt.format(v)


def _time_table(rows: list[dict], comp: str) -> list[str]:
    lines = [
        "| config | peer | params M ours/peer | GFLOPs ours/peer | mode | ours | peer | ours wall | peer wall | "
        "ratio wall (rounds) | ratio min | ours CPU | peer CPU | ratio CPU |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in (r for r in rows if r["comparison"] == comp):
        o, p = r["ours"], r["peer_cell"]
        cfg = CONFIG_BY_NAME[r["config"]]
        params = "/".join(_f(x["params"] and x["params"] / 1e6, "{:.3f}") for x in (o, p))
        gfl = f"{_f(o['gflops'], '{:.1f}')}/{_f(p['gflops'], '{:.1f}')}" if r["mode"] == "fwd" else ""
        rr = "/".join(_f(x) for x in r["round_ratios_wall"])
        lines.append(
            f"| {cfg.name} (b{cfg.batch}) | {cfg.peer} | {params} | {gfl} | {r['mode']} | {o['precision']} | "
            f"{p['precision']} | {_f(o['wall_s'], '{:.3f}')} | {_f(p['wall_s'], '{:.3f}')} | "
            f"**{_f(r['ratio_wall'])}** ({rr}) | {_f(r['ratio_min_wall'])} | {_f(o['cpu_s'], '{:.3f}')} | "
            f"{_f(p['cpu_s'], '{:.3f}')} | {_f(r['ratio_cpu'])} |"
        )
    return lines


def markdown(result: dict) -> str:
    m, rows = result["machine"], result["rows"]
    comps = list(dict.fromkeys(r["comparison"] for r in rows))
    auto = result.get("auto_amp", result["dtype"])
    lines = [
        "# Model benchmark: spatiotemporal vs peers",
        "",
        *([] if result.get("complete", True) else ["**Partial results: the run was interrupted.**", ""]),
        f"{m['date']} on {m['cpu']} ({m['cpus']} CPUs, torch CPU capability {m.get('cpu_capability')}), "
        f"{result['device']}, {result['threads']} threads, OMP_WAIT_POLICY={result.get('omp_wait_policy') or 'unset'}; "
        f"torch {m['torch']}, timm {m['timm']}, monai {m['monai']}; "
        f"{result['rounds']} interleaved rounds x {result['iters']} timed iterations "
        f"(order alternating per round); official TimeSformer from `{result['timesformer_src']}`. "
        f"`amp=auto` (our trainer's default) resolves to **{auto}** on this machine.",
        "",
        "Ratio = ours / peer of the medians over all timed iterations (< 1: ours is faster / smaller); "
        "in brackets the per-round ratios of wall medians; min = ratio of the fastest iterations. "
        "CPU = process CPU time (all threads). peak+ = growth of the resident set (RSS) during the iterations.",
    ]
    titles = {
        "identical": f"Identical settings ({result['dtype']}, eager, both sides)",
        "defaults": f"Defaults: ours at amp=auto ({auto}), the peer as it ships (fp32)",
        "defaults, peer+autocast": f"Defaults, the peer under the same autocast ({auto}) as ours",
    }
    for comp in comps:
        lines += ["", f"## {titles.get(comp, comp)}", "", *_time_table(rows, comp)]
    lines += ["", "## Peak memory growth (peak+), MiB", "",
              "| config | comparison | fwd ours | fwd peer | fwd ratio | train ours | train peer | train ratio |",
              "|---|---|---|---|---|---|---|---|"]
    by = {(r["config"], r["mode"], r["comparison"]): r for r in rows}
    for cfg in CONFIGS:
        for comp in comps:
            f, t = by.get((cfg.name, "fwd", comp)), by.get((cfg.name, "train", comp))
            if f is None and t is None:
                continue

            def cells(r):
                if r is None:
                    return "n/a | n/a | n/a"
                return (f"{_f(r['ours']['peak_plus_mib'], '{:.0f}')} | {_f(r['peer_cell']['peak_plus_mib'], '{:.0f}')}"
                        f" | **{_f(r['ratio_peak'])}**")

            lines.append(f"| {cfg.name} | {comp} | {cells(f)} | {cells(t)} |")
    lines += ["", "## Machine contention during the timed iterations (median cores used by other processes / stolen)",
              "", "| config | mode | impl | precision | other | steal | timed iters |", "|---|---|---|---|---|---|---|"]
    seen = set()
    for r in rows:
        for impl, c in (("ours", r["ours"]), ("peer", r["peer_cell"])):
            key = (r["config"], r["mode"], impl, c["precision"])
            if key in seen or not c["n_timed"]:
                continue
            seen.add(key)
            lines.append(f"| {r['config']} | {r['mode']} | {impl} | {c['precision']} | {_f(c['other_cores'])} | "
                         f"{_f(c['steal_cores'])} | {c['n_timed']} |")
    lines += ["", "## Goals", "",
              f"Verdict: faster / slower only when the wall and CPU ratios both lie beyond {NOISE_BAND:.0%} of 1; "
              "otherwise a tie within the noise. Targets: train step <= 1.0x each peer at identical settings, "
              "<= 0.7x each peer's default at ours' default, TimeSformer train peak+ <= 0.8x official in every "
              "attention mode, UNETR train step <= 0.8x MONAI's at identical settings.", ""]
    for r in rows:
        if r["ratio_wall"] is None:
            continue
        target = TARGETS.get(r["comparison"]) if r["mode"] == "train" else None
        met = "" if target is None else f"; target <= {target}: {'met' if r['ratio_wall'] <= target else 'MISSED'}"
        lines.append(f"- {r['config']} {r['mode']} ({r['comparison']}): wall ratio {_f(r['ratio_wall'])}, CPU ratio "
                     f"{_f(r['ratio_cpu'])} -> {speed_verdict(r['ratio_wall'], r['ratio_cpu'])}{met}; "
                     f"peak+ ratio {_f(r['ratio_peak'])}")
    for comp in comps:
        ts = [r for r in rows if r["config"].startswith("timesformer_s") and r["mode"] == "train"
              and r["comparison"] == comp and r["ratio_peak"]]
        if ts:
            met = all(r["ratio_peak"] <= MEMORY_TARGET for r in ts)
            lines.append(f"- TimeSformer-S training peak+ <= {MEMORY_TARGET}x official ({comp}): "
                         f"{'met' if met else 'NOT met'} ({', '.join(_f(r['ratio_peak']) for r in ts)})")
    un = by.get(("unetr_96", "train", "identical"))
    if un and un["ratio_wall"]:
        lines.append(f"- UNETR train step <= {UNETR_TARGET}x MONAI at identical settings: "
                     f"{'met' if un['ratio_wall'] <= UNETR_TARGET else 'NOT met'} ({_f(un['ratio_wall'])})")
    errors = {(r["config"], r["mode"], impl, c["precision"], e) for r in rows
              for impl, c in (("ours", r["ours"]), ("peer", r["peer_cell"])) for e in c["errors"]}
    mv = [r for r in rows if r["config"].startswith("mvit") and r["mode"] == "train" and r["ratio_wall"]
          and r["ratio_peak"]]
    if mv:
        met = all(speed_verdict(r["ratio_wall"], r["ratio_cpu"]) != "ours SLOWER" and r["ratio_peak"] < 1 for r in mv)
        lines.append(f"- MViTv2-S no slower than torchvision and less peak memory: {'met' if met else 'NOT met'}")
    if errors:
        lines += ["", "## Errors", ""] + [f"- {c} {mo} {i} {p}: {e}" for c, mo, i, p, e in sorted(errors)]
    return "\n".join(lines) + "\n"


def machine_info(timesformer_src: str | None) -> dict:
    import monai
    import timm
    import torch

    cpu = platform.processor()
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    commit = None
    if timesformer_src:
        with contextlib.suppress(Exception):
            commit = (
                subprocess.run(
                    ["git", "-C", timesformer_src, "rev-parse", "HEAD"],
                    capture_output=True,
                    text=True,
                    timeout=10,
                ).stdout.strip()
                or None
            )
    load = None
    with contextlib.suppress(OSError), open("/proc/loadavg") as f:
        load = [float(v) for v in f.read().split()[:3]]
    return dict(
        date=dt.datetime.now().isoformat(timespec="seconds"),
        loadavg_1_5_15=load,
        cpu=cpu,
        cpus=os.cpu_count(),
        python=platform.python_version(),
        torch=torch.__version__,
        timm=timm.__version__,
        monai=monai.__version__,
        cpu_capability=torch.backends.cpu.get_cpu_capability(),
        timesformer_commit=commit,
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--timesformer-src", default=None, help="folder holding the official timesformer/ package"
    )
    ap.add_argument("--only", default="vit,timesformer,unetr", help="comma list of families or config names")
    ap.add_argument("--modes", default="fwd,train")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="fp32", choices=["fp32", "bf16", "fp16"],
                    help="precision of the identical-settings comparison")
    ap.add_argument("--comparisons", default="identical,defaults",
                    help="identical and/or defaults (defaults also measures the peer under ours' autocast)")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per measurement")
    ap.add_argument(
        "--omp-wait-policy",
        choices=["unset", "PASSIVE", "ACTIVE"],
        default="unset",
        help="OMP_WAIT_POLICY for the workers; PASSIVE avoids spin-waiting on a contended machine",
    )
    ap.add_argument("--render", metavar="JSON", help="only rewrite the Markdown of an existing result JSON")
    ap.add_argument("--out", default=str(HERE / "results" / "models_cpu.json"))
    args = ap.parse_args(argv)
    if args.render:
        path = Path(args.render)
        result = json.loads(path.read_text())
        auto = result.setdefault("auto_amp", result["dtype"])  # results from before the defaults comparison
        result["rows"] = summarize(result["runs"], comparisons(result["dtype"], auto))
        path.write_text(json.dumps(result, indent=1))
        path.with_suffix(".md").write_text(markdown(result))
        print(markdown(result))
        return

    wanted = set(args.only.split(","))
    configs = [c for c in CONFIGS if c.family in wanted or c.name in wanted]
    if not configs:
        ap.error(
            f"--only {args.only!r} selects nothing; families: {', '.join(FAMILIES)}; "
            f"configs: {', '.join(CONFIG_BY_NAME)}"
        )
    src = str(Path(args.timesformer_src).resolve()) if args.timesformer_src else None
    modes = args.modes.split(",")
    auto = auto_amp(args.device)
    comps = {k: v for k, v in comparisons(args.dtype, auto).items() if k.split(",")[0] in args.comparisons.split(",")}
    cells = list(dict.fromkeys(cell for pair in comps.values() for cell in pair))  # (impl, precision), once each

    if args.omp_wait_policy != "unset":  # inherited by the forkserver, set before it imports torch
        os.environ["OMP_WAIT_POLICY"] = args.omp_wait_policy
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["torch", "timm", "monai.networks.nets", "spatiotemporal", "einops"])
    runs, t_start = [], time.time()
    machine_start = machine_info(src)
    plan = []
    for rnd in range(args.rounds):
        for cfg in configs:
            for mode in modes:
                todo = [c for c in cells if c[0] == "ours" or src or not FAMILIES[cfg.family].needs_src]
                for impl, precision in todo if rnd % 2 == 0 else todo[::-1]:
                    plan.append(
                        dict(
                            config=cfg.name,
                            impl=impl,
                            precision=precision,
                            mode=mode,
                            round=rnd,
                            iters=args.iters,
                            warmup=args.warmup,
                            threads=args.threads,
                            seed=args.seed,
                            device=args.device,
                            dtype=args.dtype,
                            timesformer_src=src,
                            flops=rnd == 0,
                        )
                    )
    for i, spec in enumerate(plan, 1):
        res = run_isolated(ctx, spec, args.timeout)
        runs.append(res)
        msg = res.get("error") or (
            f"wall {_f(_median(res['wall_s']), '{:.3f}')} s, cpu "
            f"{_f(_median(res['cpu_s']), '{:.3f}')} s, peak+ {res['peak_plus_mib']:.0f} MiB, "
            f"others {_f(_median(res['other_cores']))} cores"
        )
        print(
            f"[{time.time() - t_start:6.0f} s] {i}/{len(plan)} r{spec['round']} {spec['config']} "
            f"{spec['mode']} {spec['impl']} {spec['precision']}: {msg}",
            file=sys.stderr,
            flush=True,
        )
        # partial results after every measurement, so an interrupted run still leaves data
        write_results(args, src, machine_start, runs, t_start, comps, auto, complete=i == len(plan))
    print(markdown(json.loads(Path(args.out).read_text())))
    print(f"wrote {args.out} and {Path(args.out).with_suffix('.md')}", file=sys.stderr)


def write_results(args, src: str | None, machine_start: dict, runs: list[dict], t_start: float, comps: dict,
                  auto: str, complete: bool):
    """Write the JSON (machine, settings, summary rows, raw runs) and its Markdown table."""
    result = dict(
        complete=complete,
        omp_wait_policy=os.environ.get("OMP_WAIT_POLICY"),
        machine=machine_start,
        machine_end=machine_info(src) if complete else None,
        device=args.device,
        dtype=args.dtype,
        auto_amp=auto,
        threads=args.threads,
        rounds=args.rounds,
        iters=args.iters,
        warmup=args.warmup,
        timesformer_src=src,
        total_s=round(time.time() - t_start, 1),
        rows=summarize(runs, comps),
        runs=runs,
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    out.with_suffix(".md").write_text(markdown(result))


if __name__ == "__main__":
    main()
