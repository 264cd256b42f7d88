"""UNETR 96^3 train step in NCDHW vs channels_last_3d (model and input), ours and MONAI's, fp32 and bf16 autocast.

One process per cell (``python benchmarks/unetr_layout.py IMPL FORMAT PRECISION``, IMPL = ours | monai, FORMAT =
nc | cl, PRECISION = fp32 | bf16), 2 threads, 3 train steps (forward, per-voxel cross-entropy, backward, AdamW);
prints ``wall/CPU`` seconds per step, the first step including the warm-up. The recorded run
(``results/unetr_layout_cpu.txt``) ran the cells one after another under ``flock /tmp/spatio-cpu.lock`` with
``OMP_WAIT_POLICY=PASSIVE``:

    for a in "monai nc fp32" "ours nc fp32" "monai cl fp32" "ours cl fp32" "ours nc bf16" "ours cl bf16"; do
        python benchmarks/unetr_layout.py $a; done
"""

import sys
import time

import torch
import torch.nn.functional as F
from monai.networks.nets import UNETR

from spatiotemporal import create_model

torch.set_num_threads(2)
which, fmt, dt = sys.argv[1:4]
torch.manual_seed(0)
m = create_model("unetr_base") if which == "ours" else UNETR(1, 14, (96, 96, 96))
x = torch.randn(1, 1, 96, 96, 96)
y = torch.randint(0, 14, (1, 96, 96, 96))
if fmt == "cl":
    m = m.to(memory_format=torch.channels_last_3d)
    x = x.contiguous(memory_format=torch.channels_last_3d)
opt = torch.optim.AdamW(m.parameters(), lr=1e-4)


def step():
    with torch.autocast("cpu", torch.bfloat16, enabled=dt == "bf16"):
        out = m(x)
    F.cross_entropy(out.float(), y).backward()
    opt.step()
    opt.zero_grad(set_to_none=True)


ts = []
for _ in range(3):
    c, t = time.process_time(), time.perf_counter()
    step()
    ts.append((time.perf_counter() - t, time.process_time() - c))
print(which, fmt, dt, " ".join(f"{w:.2f}/{c:.2f}" for w, c in ts), flush=True)
