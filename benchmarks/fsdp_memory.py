"""Peak memory per process of ``train.parallel=fsdp`` (FSDP2) against DDP, 2 CPU ranks (gloo), same model and steps.

Each mode runs under ``torchrun --nproc_per_node 2``: the engine's own parallel mode
(``spatiotemporal.engine.parallel.parallel_mode``) prepares a ViT-B/16 (86.6 M parameters), then ``--steps``
AdamW training steps on one random 224 px image per rank. Reported per rank: the resident set once the model is
built (before sharding), its peak during training (``VmHWM``) and the growth, in MiB; and the parameter,
gradient and AdamW-state bytes each rank holds (``4 x 4 x params`` in DDP, a ``1 / world`` share of it in FSDP).

Usage: python benchmarks/fsdp_memory.py [--model vit_base_patch16_224] [--steps 3]
(the launcher runs itself under torchrun once per mode; ``--worker`` is that inner run)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MiB = 1024 * 1024


def _kib(key: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key + ":"))


def worker(mode: str, model_name: str, steps: int, out: Path) -> None:
    import torch
    import torch.nn.functional as F

    from spatiotemporal import create_model
    from spatiotemporal.engine.distributed import init_distributed
    from spatiotemporal.engine.parallel import parallel_mode

    torch.set_num_threads(1)
    d = init_distributed("cpu")
    torch.manual_seed(0)
    model = create_model(model_name)
    params = sum(p.numel() for p in model.parameters())
    base = _kib("VmRSS") / 1024
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    par = parallel_mode(mode, d)
    par.shard(model)
    net = par.wrap(model)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    spec = model.input_spec()
    x = torch.randn(1, spec.channels, *spec.size, generator=torch.Generator().manual_seed(d.rank))
    y = torch.tensor([d.rank])
    def step():
        F.cross_entropy(net(x), y).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    rss_peak = _kib("VmHWM") / 1024
    # one more step under torch's tracker of live tensors (FSDP's own for the sharded model)
    if mode == "fsdp":
        from torch.distributed._tools.fsdp2_mem_tracker import FSDPMemTracker

        tracker = FSDPMemTracker(model, opt)
        tracker.track_inputs((x, y))
    else:
        from torch.distributed._tools.mem_tracker import MemTracker

        tracker = MemTracker()
        tracker.track_external(model, opt)
    with tracker:
        step()
    tensor_peak = sum(v.get("Total", 0) if isinstance(v, dict) else 0
                      for v in tracker.get_tracker_snapshot("peak").values()) / MiB
    local = sum(p.to_local().numel() if hasattr(p, "to_local") else p.numel() for p in model.parameters())
    res = dict(mode=mode, rank=d.rank, world=d.world_size, params=params, local_params=local,
               rss_built_mib=round(base, 1), rss_peak_mib=round(rss_peak, 1), tensor_peak_mib=round(tensor_peak, 1),
               state_mib=round(local * 4 * 4 / MiB, 1), step_s=times)
    res["peak_plus_mib"] = round(res["rss_peak_mib"] - base, 1)
    (out / f"{mode}_rank{d.rank}.json").write_text(json.dumps(res))
    torch.distributed.destroy_process_group()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="vit_base_patch16_224")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--out", default=str(HERE / "results" / "fsdp_memory.json"))
    ap.add_argument("--worker", nargs=2, metavar=("MODE", "DIR"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        worker(a.worker[0], a.model, a.steps, Path(a.worker[1]))
        return
    import tempfile

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("ddp", "fsdp"):
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
                   "--master_addr", "127.0.0.1", "--master_port", str(port), __file__, "--model", a.model,
                   "--steps", str(a.steps), "--worker", mode, tmp]
            subprocess.run(cmd, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
            results += [json.loads((Path(tmp) / f"{mode}_rank{r}.json").read_text()) for r in (0, 1)]
    result = dict(machine=f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs", model=a.model,
                  steps=a.steps, ranks=results)
    Path(a.out).write_text(json.dumps(result, indent=1))
    Path(a.out).with_suffix(".md").write_text(markdown(result))
    print(markdown(result))


def markdown(result: dict) -> str:
    lines = ["# FSDP2 vs DDP: memory per process (2 CPU ranks, gloo)", "",
             f"{result['machine']}, under `flock /tmp/spatio-cpu.lock`; {result['model']}, {result['steps']} "
             "AdamW steps, one image per rank, 1 thread per rank, in MiB. Tensor peak = peak of the live tensors "
             "during one more step (torch's MemTracker; FSDPMemTracker for FSDP): parameters, gradients, AdamW "
             "state, activations and FSDP's gathered weights. RSS = the process's resident set (glibc keeps freed "
             "memory, and each rank built the whole model before sharding it).", "",
             "| mode | rank | params held / total (M) | params+grads+AdamW | tensor peak | RSS after build | "
             "RSS peak | step s (last) |", "|---|---|---|---|---|---|---|---|"]
    for r in result["ranks"]:
        lines.append(f"| {r['mode']} | {r['rank']} | {r['local_params'] / 1e6:.1f} / {r['params'] / 1e6:.1f} | "
                     f"{r['state_mib']:.0f} | **{r['tensor_peak_mib']:.0f}** | {r['rss_built_mib']:.0f} | "
                     f"{r['rss_peak_mib']:.0f} | {r['step_s'][-1]:.2f} |")
    by = {(r["mode"], r["rank"]): r for r in result["ranks"]}
    for key, what in (("tensor_peak_mib", "tensor peak"), ("rss_peak_mib", "RSS peak")):
        ratios = [by[("fsdp", k)][key] / by[("ddp", k)][key] for k in (0, 1) if ("fsdp", k) in by and ("ddp", k) in by]
        if ratios:
            lines += ["", f"{what} FSDP / DDP per rank: {', '.join(f'{x:.2f}' for x in ratios)}."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
