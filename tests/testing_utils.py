import multiprocessing
import os
from pathlib import Path

import torch


def randomize_(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every parameter and float buffer (BatchNorm stats too) random values: nothing at its init."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in list(module.named_parameters()) + list(module.named_buffers()):
            if not t.is_floating_point():
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            else:
                t.copy_(torch.randn(t.shape, generator=g) * 0.05 + (1.0 if name.endswith(("norm.weight", "gamma"))
                                                                     else 0.0))
    return module


def one_line(capsys, argv: list) -> str:
    """Run ``spatio argv``: exit status 2 and exactly one stderr line ``spatio CMD: error: ...``; its message."""
    from spatiotemporal.cli.main import main

    capsys.readouterr()
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    prefix = f"spatio {argv[0]}: error: "
    assert "\n" not in err and err.startswith(prefix), err
    return err[len(prefix):]


def _hold_lock(folder, conn) -> None:
    from spatiotemporal.utils.run_lock import run_lock

    with run_lock(folder, "train"):
        conn.send(os.getpid())
        conn.recv()  # until the parent says so, or kills us


def hold_lock_in_child(folder):
    """A forked child holding run folder ``folder``'s lock, as a run writing there would: ``(process, connection)``;
    send anything on the connection to release it, or kill the process."""
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_hold_lock, args=(folder, child), daemon=True)
    proc.start()
    assert parent.poll(20), "the child did not take the lock"
    assert parent.recv() == proc.pid
    return proc, parent


def brats_layout_from_msd(msd_root, out):
    """The MSD phantom cases rewritten in the BraTS layout: one file per modality, labels 1 NCR, 2 ED, 4 ET."""
    import nibabel as nib
    import numpy as np

    from spatiotemporal.data.volume import load_volume_datalist

    dl = load_volume_datalist(msd_root, "dataset.json")
    for item in dl.training + dl.validation:
        img, lab = nib.load(item["image"]), nib.load(item["label"])
        case = Path(item["image"]).name.removesuffix(".nii.gz")
        (out / case).mkdir(parents=True)
        data = np.asanyarray(img.dataobj)
        for c, m in enumerate(("flair", "t1", "t1ce", "t2")):  # MSD channel order: FLAIR, T1w, T1gd, T2w
            nib.save(nib.Nifti1Image(data[..., c], img.affine), str(out / case / f"{case}_{m}.nii.gz"))
        seg = np.choose(np.asanyarray(lab.dataobj), [0, 2, 1, 4]).astype(np.uint8)  # MSD 1 ED, 2 NCR, 3 ET
        nib.save(nib.Nifti1Image(seg, lab.affine), str(out / case / f"{case}_seg.nii.gz"))
    return out
