"""The built wheel holds the recipes and trains from outside the checkout (no editable install involved)."""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_wheel_holds_the_recipes_and_trains_from_any_folder(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "spatiotemporal", src / "spatiotemporal",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "dist"), str(src)], check=True)
    wheel = next((tmp_path / "dist").glob("spatiotemporal-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    recipes = {Path(n).stem for n in names if n.startswith("spatiotemporal/configs/") and n.endswith(".yaml")}
    shipped = {p.stem for p in (REPO / "spatiotemporal" / "configs").glob("*.yaml")}
    assert recipes == shipped and {"defaults", "timesformer_tiny_builtin", "unetr_btcv"} <= recipes

    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                   check=True)
    run = tmp_path / "elsewhere"
    run.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "SPATIO_CACHE": str(tmp_path / "cache")}
    where = subprocess.run([sys.executable, "-c", "import spatiotemporal; print(spatiotemporal.__file__)"],
                           cwd=run, env=env, capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(site))
    proc = subprocess.run([str(site / "bin" / "spatio"), "train", "timesformer", "--max-steps", "1", "--epochs",
                           "1", "--batch-size", "2", "--workers", "0", "model.overrides.depth=1"],
                          cwd=run, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (run / "runs" / "timesformer_tiny_builtin" / "checkpoints" / "last.pt").is_file()
