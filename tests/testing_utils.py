import multiprocessing
import os

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
