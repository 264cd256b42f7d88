"""Clips/s of spatiotemporal's video loader vs pytorchvideo 0.1.5 ``EncodedVideo`` on the same files.

Test videos as in ``peers_cpu.md``: 340x256, 30 fps, 10 s, H.264 (libx264 crf 23, preset medium, default
GOP) and MPEG-4 part 2 (GOP 12), panning multi-scale texture + 6 moving discs + noise. A clip is 8 frames
spanning 256 frames (TimeSformer 8x32), random start; every method reads the same (file, start) list.

Methods (single process, 1 torch thread, as in one DataLoader worker):

- ``ours_decode_{decord,pyav}``: ``read_clip`` -> uint8 (8, 256, 340, 3).
- ``ours_item_{decord,pyav}``: ``VideoClipDataset.__getitem__`` end to end (decode, short side U[256, 320],
  random 224 crop, flip, normalise) -> float32 (3, 8, 224, 224).
- ``pytorchvideo_{decord,pyav}``: ``EncodedVideo.from_path(path, decode_audio=False, decoder=...)
  .get_clip(start, end)`` (all 256 frames, float32) then the 8 frames picked -> (3, 8, 256, 340). Decode
  only: ``pytorchvideo.transforms`` does not import with torchvision 0.29, so its end-to-end cost is higher.

Rounds are interleaved (every method once per round, rotating order) because the machine is shared.
Needs ``pip install --no-deps pytorchvideo==0.1.5 fvcore iopath`` plus ``portalocker`` (iopath's dependency).

Usage: python benchmarks/video_loading.py [--rounds 3] [--clips 12] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F

from spatiotemporal.data.video import VideoClipDataset, VideoDataConfig, clip_indices, read_clip

WIDTH, HEIGHT, FPS, SECONDS = 340, 256, 30, 10
NUM_FRAMES, SAMPLING_RATE = 8, 32
SPAN = NUM_FRAMES * SAMPLING_RATE


def make_video(path: Path, codec: str, seed: int) -> None:
    """Panning multi-scale texture + 6 moving discs + sigma 3 noise, encoded with PyAV."""
    rng = np.random.default_rng(seed)
    big_h, big_w = HEIGHT + 200, WIDTH + 400
    tex = np.zeros((3, big_h, big_w), np.float32)
    for scale in (4, 16, 64):
        small = torch.from_numpy(rng.uniform(0, 1, (1, 3, big_h // scale + 2, big_w // scale + 2)).astype(np.float32))
        tex += F.interpolate(small, size=(big_h, big_w), mode="bilinear", align_corners=False)[0].numpy()
    tex = (tex / 3 * 255).transpose(1, 2, 0)
    discs = [(rng.uniform(0, WIDTH), rng.uniform(0, HEIGHT), rng.uniform(-3, 3), rng.uniform(-3, 3),
              rng.uniform(10, 30), rng.uniform(0, 255, 3)) for _ in range(6)]
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=FPS, options={"crf": "23", "preset": "medium"} if codec == "libx264" else {})
        s.width, s.height, s.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        if codec == "mpeg4":
            s.codec_context.gop_size = 12
            s.codec_context.bit_rate = 1_000_000
        for t in range(FPS * SECONDS):
            oy, ox = int(100 + 80 * np.sin(t / 60)), int(t * 1.3) % 400
            img = tex[oy : oy + HEIGHT, ox : ox + WIDTH].copy()
            for x, y, vx, vy, r, col in discs:
                img[(xx - (x + vx * t) % WIDTH) ** 2 + (yy - (y + vy * t) % HEIGHT) ** 2 < r * r] = col
            img += rng.normal(0, 3, img.shape)
            frame = av.VideoFrame.from_ndarray(np.clip(img, 0, 255).astype(np.uint8), format="rgb24")
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def cpu_times() -> tuple[float, float]:
    """(busy jiffies of all processes, steal jiffies) from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return float(sum(v[:8]) - idle - v[7]), float(v[7])


def machine_info() -> dict:
    cpu = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import decord
    import pytorchvideo

    return {
        "cpu": cpu,
        "logical_cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "decord": decord.__version__,
        "av": av.__version__,
        "pytorchvideo": getattr(pytorchvideo, "__version__", "0.1.5"),
        "torch_threads": torch.get_num_threads(),
    }


def build_methods(root: Path, files: dict[str, list[Path]]):
    from pytorchvideo.data.encoded_video import EncodedVideo

    def ours_decode(backend):
        def run(path, start):
            return read_clip(path, lambda n, fps: clip_indices(start, SPAN, NUM_FRAMES, n), backend=backend).frames
        return run

    datasets = {}
    for codec in files:
        for backend in ("decord", "pyav"):
            cfg = VideoDataConfig(backend=backend, train_csv=f"{codec}.csv")
            datasets[codec, backend] = VideoClipDataset(root, "train", cfg, seed=0)

    def ours_item(backend):
        counter = iter(range(10**9))

        def run(path, start):
            codec = path.stem.split("_")[0]
            ds = datasets[codec, backend]
            index = [p for p, _ in ds.samples].index(path)
            ds.set_epoch(next(counter))  # a fresh random clip each call
            return ds[index]["video"]
        return run

    def pytorchvideo(decoder):
        def run(path, start):
            video = EncodedVideo.from_path(str(path), decode_audio=False, decoder=decoder)
            clip = video.get_clip(start / FPS, (start + SPAN) / FPS)["video"]  # (C, ~256, H, W) float32
            idx = torch.linspace(0, clip.shape[1] - 1, NUM_FRAMES).long()
            return clip.index_select(1, idx)
        return run

    return {
        "ours_decode_decord": ours_decode("decord"),
        "ours_decode_pyav": ours_decode("pyav"),
        "ours_item_decord": ours_item("decord"),
        "ours_item_pyav": ours_item("pyav"),
        "pytorchvideo_decord": pytorchvideo("decord"),
        "pytorchvideo_pyav": pytorchvideo("pyav"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clips", type=int, default=12, help="timed clips per method, codec and round")
    ap.add_argument("--videos", type=int, default=3, help="test videos per codec")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    ap.add_argument("--video-dir", type=Path, default=None, help="reuse/keep generated videos here")
    args = ap.parse_args()
    torch.set_num_threads(1)

    root = args.video_dir or Path(tempfile.mkdtemp(prefix="video_bench_"))
    root.mkdir(parents=True, exist_ok=True)
    files: dict[str, list[Path]] = {}
    t0 = time.time()
    for codec, name in (("libx264", "h264"), ("mpeg4", "mpeg4")):
        files[name] = []
        for i in range(args.videos):
            path = root / f"{name}_{i}.mp4"
            if not path.exists():
                make_video(path, codec, seed=i)
            files[name].append(path)
        (root / f"{name}.csv").write_text("".join(f"{p.name} 0\n" for p in files[name]))
    print(f"videos ready in {time.time() - t0:.1f}s under {root}", file=sys.stderr)

    methods = build_methods(root, files)
    rng = np.random.default_rng(0)
    work = {c: [(files[c][int(rng.integers(len(files[c])))], float(rng.uniform(0, FPS * SECONDS - SPAN)))
                for _ in range(args.clips)] for c in files}
    results: dict[str, dict[str, list[float]]] = {m: {c: [] for c in files} for m in methods}
    contention: list[dict] = []
    names = list(methods)
    for r in range(args.rounds):
        order = names[r % len(names):] + names[: r % len(names)]
        for codec in files:
            for m in order:
                fn = methods[m]
                fn(*work[codec][0])  # warm-up (imports, page cache)
                busy0, steal0 = cpu_times()
                wall0 = time.perf_counter()
                own0 = time.process_time()
                times = []
                for path, start in work[codec]:
                    t = time.perf_counter()
                    fn(path, start)
                    times.append(time.perf_counter() - t)
                wall = time.perf_counter() - wall0
                busy1, steal1 = cpu_times()
                tick = os.sysconf("SC_CLK_TCK")
                others = max((busy1 - busy0) / tick - (time.process_time() - own0), 0.0) / wall
                cps = 1.0 / statistics.median(times)
                results[m][codec].append(cps)
                contention.append({"round": r, "method": m, "codec": codec, "other_cores": round(others, 2),
                                   "steal_cores": round((steal1 - steal0) / tick / wall, 3)})
                print(f"round {r} {codec:5s} {m:22s} {cps:7.2f} clips/s  (others {others:.2f} cores)",
                      file=sys.stderr)

    summary = {m: {c: {"clips_per_s": [round(v, 3) for v in results[m][c]],
                       "median": round(statistics.median(results[m][c]), 3)} for c in files} for m in methods}
    speedups = {}
    for c in files:
        for ours, peer in (("ours_item_decord", "pytorchvideo_decord"), ("ours_decode_decord", "pytorchvideo_decord"),
                           ("ours_item_pyav", "pytorchvideo_pyav"), ("ours_decode_pyav", "pytorchvideo_pyav")):
            speedups[f"{c}:{ours}/{peer}"] = round(summary[ours][c]["median"] / summary[peer][c]["median"], 2)
    out = {
        "benchmark": "video_loading",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": machine_info(),
        "setup": {"video": f"{WIDTH}x{HEIGHT} {FPS} fps {SECONDS} s", "codecs": {"h264": "libx264 crf 23 medium",
                  "mpeg4": "mpeg4 1 Mbit/s GOP 12"}, "clip": f"{NUM_FRAMES} frames, span {SPAN} (8x32)",
                  "rounds": args.rounds, "clips_per_round": args.clips, "videos_per_codec": args.videos,
                  "statistic": "clips/s = 1 / median per-clip time in a round; 'median' over rounds"},
        "results": summary,
        "speedups": speedups,
        "contention": contention,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "video_loading.json").write_text(json.dumps(out, indent=1))
    lines = [
        "# Video loading: clips/s (8 frames, 8x32 span, single process, 1 thread)",
        "",
        f"{out['machine']['cpu']}, {out['machine']['logical_cores']} cores; torch {torch.__version__}, "
        f"decord {out['machine']['decord']}, PyAV {av.__version__}, pytorchvideo {out['machine']['pytorchvideo']}. "
        f"{args.rounds} interleaved rounds x {args.clips} clips; values are per-round clips/s (median shown first).",
        "",
        "| method | output | h264 clips/s | mpeg4 clips/s |",
        "|---|---|---|---|",
    ]
    outputs = {"ours_decode": "uint8 (8,256,340,3)", "ours_item": "float (3,8,224,224), augmented",
               "pytorchvideo": "float (3,8,256,340), no transforms"}
    for m in methods:
        cells = [f"**{summary[m][c]['median']:.2f}** ({'/'.join(f'{v:.2f}' for v in summary[m][c]['clips_per_s'])})"
                 for c in files]
        lines.append(f"| {m} | {outputs[m.rsplit('_', 1)[0]]} | " + " | ".join(cells) + " |")
    others = statistics.mean(c["other_cores"] for c in contention)
    lines += ["", "Speedups (median / median): " + ", ".join(f"{k} = {v}x" for k, v in speedups.items()), "",
              f"Machine load: other processes used {others:.2f} of {os.cpu_count()} cores on average while timing "
              "(shared VM; see `contention` in the JSON). Absolute numbers are noisy; the ratios come from "
              "interleaved rounds.", ""]
    (args.out / "video_loading.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
