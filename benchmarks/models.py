"""Speed and memory of spatiotemporal's models against their peers, at identical settings, in one run.

Configs (ours vs peer):
- ``vit``: ``create_model("vit_small_patch16_224")`` vs timm ``vit_small_patch16_224``, batch 8, 224 px.
- ``timesformer``: ``create_model("timesformer_small", mixer=...)`` (the official space-only model is
  ``mixer="joint", framewise=True``) vs the official TimeSformer
  ``VisionTransformer`` (ViT-S, 8 x 112, patch 16; loaded by ``_peer_timesformer.py`` from
  ``--timesformer-src``), divided / joint / space_only, batch 2.
- ``unetr``: ``create_model("unetr_base")`` vs MONAI ``UNETR(1, 14, (96, 96, 96))``, batch 1.
- ``mvit``: ``create_model("mvit_v2_s")`` vs torchvision ``mvit_v2_s()``, 16 x 224, batch 1 (not in the default
  ``--only``; its results go to ``results/models_mvit_cpu.{json,md}``).

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
    family: str  # vit | timesformer | unetr
    peer: str
    batch: int
    input_shape: tuple  # without the batch
    num_classes: int
    dense: bool = False  # labels per voxel (segmentation)
    attention: str | None = None


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
    Config("unetr_96", "unetr", "MONAI UNETR(1, 14, (96,)*3)", 1, (1, 96, 96, 96), 14, dense=True),
    Config("mvit_v2_s_16x224", "mvit", "torchvision mvit_v2_s", 1, (3, 16, 224, 224), 400),
]
CONFIG_BY_NAME = {c.name: c for c in CONFIGS}


def build_model(cfg: Config, impl: str, timesformer_src: str | None):
    """Our model (``impl="ours"``) or the peer's, randomly initialised from the current seed."""
    if impl == "ours":
        from spatiotemporal import create_model

        if cfg.family == "vit":
            return create_model("vit_small_patch16_224")
        if cfg.family == "timesformer":
            mixer = {"space_only": {"mixer": "joint", "framewise": True}}.get(cfg.attention, {"mixer": cfg.attention})
            return create_model("timesformer_small", num_classes=cfg.num_classes, **mixer)
        if cfg.family == "mvit":
            return create_model("mvit_v2_s")
        return create_model("unetr_base")
    if cfg.family == "vit":
        import timm

        return timm.create_model("vit_small_patch16_224")
    if cfg.family == "timesformer":
        from _peer_timesformer import build_official_timesformer

        if not timesformer_src:
            raise ValueError("the official TimeSformer needs --timesformer-src")
        return build_official_timesformer(timesformer_src, cfg.attention, num_classes=cfg.num_classes)
    if cfg.family == "mvit":
        from torchvision.models.video import mvit_v2_s

        return mvit_v2_s()
    from monai.networks.nets import UNETR

    return UNETR(1, 14, (96, 96, 96))


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


def measure(spec: dict) -> dict:
    """Build, warm up, time and measure one (config, impl, mode) cell; runs in its own process."""
    import torch

    cfg = CONFIG_BY_NAME[spec["config"]]
    device, dtype = spec["device"], spec["dtype"]
    cuda = device.startswith("cuda")
    torch.set_num_threads(spec["threads"])
    torch.manual_seed(spec["seed"])
    model = build_model(cfg, spec["impl"], spec.get("timesformer_src")).to(device)
    g = torch.Generator().manual_seed(spec["seed"] + 1)
    x = torch.randn((cfg.batch, *cfg.input_shape), generator=g).to(device)
    label_shape = (cfg.batch, *cfg.input_shape[1:]) if cfg.dense else (cfg.batch,)
    y = torch.randint(0, cfg.num_classes, label_shape, generator=g).to(device)
    step, _opt = make_step(model, x, y, spec["mode"], device, dtype)
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
    out = dict(
        spec,
        wall_s=walls,
        cpu_s=cpus,
        warmup_s=warm,
        other_cores=others,
        steal_cores=steals,
        peak_plus_mib=round(peak, 1),
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


def summarize(runs: list[dict]) -> list[dict]:
    """One row per (config, mode): medians over all rounds, ratios ours/peer, per-round ratios."""
    rows = []
    for cfg in CONFIGS:
        for mode in ("fwd", "train"):
            cell = [r for r in runs if r["config"] == cfg.name and r["mode"] == mode]
            if not cell:
                continue
            row: dict = dict(
                config=cfg.name,
                mode=mode,
                peer=cfg.peer,
                batch=cfg.batch,
                input=[cfg.batch, *cfg.input_shape],
            )
            for impl in ("ours", "peer"):
                ok = [r for r in cell if r["impl"] == impl and "error" not in r]
                errs = [r["error"] for r in cell if r["impl"] == impl and "error" in r]
                row[impl] = dict(
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
                    errors=errs,
                )
            o, p = row["ours"], row["peer"]
            row["ratio_wall"] = _ratio(o["wall_s"], p["wall_s"])
            row["ratio_cpu"] = _ratio(o["cpu_s"], p["cpu_s"])
            row["ratio_min_wall"] = _ratio(o["min_wall_s"], p["min_wall_s"])
            row["ratio_quiet_wall"] = _ratio(o["quiet_wall_s"], p["quiet_wall_s"])
            row["ratio_peak"] = _ratio(o["peak_plus_mib"], p["peak_plus_mib"])
            row["round_ratios_wall"] = [_ratio(a, b) for a, b in zip(o["round_wall_s"], p["round_wall_s"])]
            rows.append(row)
    return rows


NOISE_BAND = 0.05


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


def markdown(result: dict) -> str:
    m, rows = result["machine"], result["rows"]
    by = {(r["config"], r["mode"]): r for r in rows}
    lines = [
        "# Model benchmark: spatiotemporal vs peers",
        "",
        *([] if result.get("complete", True) else ["**Partial results: the run was interrupted.**", ""]),
        f"{m['date']} on {m['cpu']} ({m['cpus']} CPUs), {result['device']} {result['dtype']}, "
        f"{result['threads']} threads, OMP_WAIT_POLICY={result.get('omp_wait_policy') or 'unset'}; "
        f"torch {m['torch']}, timm {m['timm']}, monai {m['monai']}; "
        f"{result['rounds']} interleaved rounds x {result['iters']} timed iterations "
        f"(order alternating per round); official TimeSformer from `{result['timesformer_src']}`.",
        "",
        "Ratio = ours / peer of the medians over all timed iterations (< 1: ours is faster / smaller); "
        "in brackets the per-round ratios of wall medians; min = ratio of the fastest iterations. "
        "CPU = process CPU time (all threads).",
        "",
        "## Time, seconds per iteration",
        "",
        "| config | peer | params M ours/peer | GFLOPs ours/peer | mode | ours wall | peer wall | ratio wall "
        "(rounds) | ratio min | ours CPU | peer CPU | ratio CPU |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for cfg in CONFIGS:
        for mode in ("fwd", "train"):
            r = by.get((cfg.name, mode))
            if r is None:
                continue
            o, p = r["ours"], r["peer"]
            params = "/".join(_f(x["params"] and x["params"] / 1e6, "{:.3f}") for x in (o, p))
            gfl = f"{_f(o['gflops'], '{:.1f}')}/{_f(p['gflops'], '{:.1f}')}" if mode == "fwd" else ""
            rr = "/".join(_f(x) for x in r["round_ratios_wall"])
            head = f"| {cfg.name} (b{cfg.batch}) | {cfg.peer} | {params if mode == 'fwd' else ''} | {gfl} "
            wall = f"{_f(o['wall_s'], '{:.3f}')} | {_f(p['wall_s'], '{:.3f}')}"
            cpu = f"{_f(o['cpu_s'], '{:.3f}')} | {_f(p['cpu_s'], '{:.3f}')}"
            lines.append(
                f"{head}| {mode} | {wall} | **{_f(r['ratio_wall'])}** ({rr}) | {_f(r['ratio_min_wall'])} "
                f"| {cpu} | {_f(r['ratio_cpu'])} |"
            )
    lines += [
        "",
        "## Peak memory growth (peak+), MiB",
        "",
        "| config | fwd ours | fwd peer | fwd ratio | train ours | train peer | train ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for cfg in CONFIGS:
        f, t = by.get((cfg.name, "fwd")), by.get((cfg.name, "train"))
        if f is None and t is None:
            continue

        def cells(r):
            if r is None:
                return "n/a | n/a | n/a"
            return (
                f"{_f(r['ours']['peak_plus_mib'], '{:.0f}')} | {_f(r['peer']['peak_plus_mib'], '{:.0f}')} | "
                f"**{_f(r['ratio_peak'])}**"
            )

        lines.append(f"| {cfg.name} | {cells(f)} | {cells(t)} |")
    lines += [
        "",
        "## Machine contention during the timed iterations (median cores used by other processes / stolen)",
        "",
        "| config | mode | ours other | ours steal | peer other | peer steal | timed iters ours/peer |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        o, p = r["ours"], r["peer"]
        lines.append(
            f"| {r['config']} | {r['mode']} | {_f(o['other_cores'])} | {_f(o['steal_cores'])} | "
            f"{_f(p['other_cores'])} | {_f(p['steal_cores'])} | {o['n_timed']}/{p['n_timed']} |"
        )
    lines += [
        "",
        "## Goals",
        "",
        f"Verdict: faster / slower only when the wall and CPU ratios both lie beyond {NOISE_BAND:.0%} of 1; "
        "otherwise a tie within the noise.",
        "",
    ]
    for r in rows:
        if r["ratio_wall"] is None:
            continue
        verdict = speed_verdict(r["ratio_wall"], r["ratio_cpu"])
        lines.append(
            f"- {r['config']} {r['mode']}: wall ratio {_f(r['ratio_wall'])}, CPU ratio "
            f"{_f(r['ratio_cpu'])} -> {verdict}; peak+ ratio {_f(r['ratio_peak'])}"
        )
    ts = [
        r for r in rows if r["config"].startswith("timesformer") and r["mode"] == "train" and r["ratio_peak"]
    ]
    if ts:
        met = all(r["ratio_peak"] <= 0.8 for r in ts)
        lines.append(
            f"- TimeSformer training peak+ <= 0.8x official: {'met' if met else 'NOT met'} "
            f"({', '.join(_f(r['ratio_peak']) for r in ts)})"
        )
    mv = [r for r in rows if r["config"].startswith("mvit") and r["ratio_wall"] and r["ratio_peak"]]
    if mv:
        met = all(speed_verdict(r["ratio_wall"], r["ratio_cpu"]) != "ours SLOWER" and r["ratio_peak"] < 1 for r in mv)
        lines.append(f"- MViTv2-S no slower than torchvision and less peak memory: {'met' if met else 'NOT met'}")
    errors = [
        (r["config"], r["mode"], impl, e)
        for r in rows
        for impl in ("ours", "peer")
        for e in r[impl]["errors"]
    ]
    if errors:
        lines += ["", "## Errors", ""] + [f"- {c} {mo} {i}: {e}" for c, mo, i, e in errors]
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
    ap.add_argument("--dtype", default="fp32", choices=["fp32", "bf16", "fp16"])
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
        result["rows"] = summarize(result["runs"])
        path.write_text(json.dumps(result, indent=1))
        path.with_suffix(".md").write_text(markdown(result))
        print(markdown(result))
        return

    wanted = set(args.only.split(","))
    configs = [c for c in CONFIGS if c.family in wanted or c.name in wanted]
    if not configs:
        ap.error(
            f"--only {args.only!r} selects nothing; families: vit, timesformer, unetr, mvit; "
            f"configs: {', '.join(CONFIG_BY_NAME)}"
        )
    src = str(Path(args.timesformer_src).resolve()) if args.timesformer_src else None
    modes = args.modes.split(",")

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
                impls = ["ours", "peer"] if cfg.family != "timesformer" or src else ["ours"]
                for impl in impls if rnd % 2 == 0 else impls[::-1]:
                    plan.append(
                        dict(
                            config=cfg.name,
                            impl=impl,
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
            f"{spec['mode']} {spec['impl']}: {msg}",
            file=sys.stderr,
            flush=True,
        )
        # partial results after every measurement, so an interrupted run still leaves data
        write_results(args, src, machine_start, runs, t_start, complete=i == len(plan))
    print(markdown(json.loads(Path(args.out).read_text())))
    print(f"wrote {args.out} and {Path(args.out).with_suffix('.md')}", file=sys.stderr)


def write_results(
    args, src: str | None, machine_start: dict, runs: list[dict], t_start: float, complete: bool
):
    """Write the JSON (machine, settings, summary rows, raw runs) and its Markdown table."""
    result = dict(
        complete=complete,
        omp_wait_policy=os.environ.get("OMP_WAIT_POLICY"),
        machine=machine_start,
        machine_end=machine_info(src) if complete else None,
        device=args.device,
        dtype=args.dtype,
        threads=args.threads,
        rounds=args.rounds,
        iters=args.iters,
        warmup=args.warmup,
        timesformer_src=src,
        total_s=round(time.time() - t_start, 1),
        rows=summarize(runs),
        runs=runs,
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    out.with_suffix(".md").write_text(markdown(result))


if __name__ == "__main__":
    main()
