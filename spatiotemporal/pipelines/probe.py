"""``spatio probe`` results: a metric overall and per class under each perturbation, with the drop from
``original`` (the pipelines' ``probe`` methods call :func:`probe_results`)."""

from __future__ import annotations

from collections.abc import Callable


def probe_results(names: list[str], evaluate: Callable[[str], dict], metric: str, per_class_key: str,
                  **facts) -> dict:
    """``{"metric", "perturbations": {name: {metric, "per_class", "drop", "per_class_drop"}}, **facts}``;
    ``evaluate(name)`` returns the pipeline's metrics dict under that perturbation (``names[0]`` is
    ``original``). Drops are ``original - perturbed`` (points; None where a class has no value)."""
    results: dict[str, dict] = {}
    for name in names:
        m = evaluate(name)
        results[name] = {metric: m[metric], "per_class": dict(m.get(per_class_key) or {}),
                         "num_samples": m.get("num_samples")}
    base = results[names[0]]
    for r in results.values():
        r["drop"] = base[metric] - r[metric]
        r["per_class_drop"] = {c: (base["per_class"][c] - v if v is not None and base["per_class"].get(c) is not None
                                   else None) for c, v in r["per_class"].items()}
    return {"metric": metric, **facts, "perturbations": results}
