"""``spatio viz tsne``, ``spatio viz erf``, ``spatio viz attention`` and ``spatio viz saliency``: feature-embedding
maps, effective receptive fields, attention rollout and gradient-based saliency."""

from __future__ import annotations

import argparse

from ..engine import resolve_device
from ..pipelines import get_pipeline
from ..utils.errors import UserInputError
from ..viz.erf import THRESHOLDS
from ..viz.saliency import METHODS
from ..viz.tsne import BACKENDS

MODEL_HELP = ("random-weight registered model, NAME or NAME:key=value,... with config overrides, e.g. "
              "timesformer_tiny:mixer=xca,mixer_kwargs.ndim=2 (repeatable)")


class _AddSource(argparse.Action):
    """Collect ``--checkpoint`` and ``--model`` in command-line order into ``args.sources``."""

    def __call__(self, parser, namespace, value, option_string=None):
        sources = list(getattr(namespace, "sources", None) or [])
        sources.append(("checkpoint" if option_string == "--checkpoint" else "model", value))
        namespace.sources = sources


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", action=_AddSource, metavar="PATH",
                   help="trained checkpoint (any format load_pretrained reads; repeatable)")
    p.add_argument("--model", action=_AddSource, metavar="SPEC", help=MODEL_HELP)
    p.add_argument("--data", default=None,
                   help="dataset: builtin (the modality's generated set), or kinetics / imagenet / btcv under "
                        "--data-root (see data_recipes/); default: the first checkpoint's, else builtin")
    p.add_argument("--data-root", default=None, help="dataset folder")
    p.add_argument("--split", default="val", help="dataset split (default val)")
    p.add_argument("--img-size", type=int, default=None,
                   help="input size (default: the first checkpoint's preprocessing, else the data's own)")
    p.add_argument("--num-frames", type=int, default=None, help="frames per clip for videos (same defaults)")
    p.add_argument("--out", required=True, help="output .png; .npz and .json are written next to it")
    p.add_argument("--device", default="auto", help="auto (cuda if available) | cpu | cuda[:i]")
    p.add_argument("--seed", type=int, default=0, help="seed of random-weight models and of t-SNE")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    p.set_defaults(sources=[])


def add_parser(sub) -> None:
    p = sub.add_parser("viz", help="t-SNE of embeddings, effective receptive fields and attention rollout")
    vsub = p.add_subparsers(dest="viz_command", required=True, metavar="WHAT")

    t = vsub.add_parser(
        "tsne", help="t-SNE of forward_features embeddings, coloured by class",
        description="Embeds every sample with forward_features, reduces to 50 dims with PCA and maps to 2D with "
                    "t-SNE; one panel per model on the same samples, with kNN (leave-one-out) accuracy and "
                    "silhouette scores. Backend: scikit-learn's TSNE by default (no extra dependency; ~200 s for "
                    "10k points on 2 cores); --backend opentsne uses openTSNE's FFT t-SNE (faster beyond ~10k "
                    "points) when it is installed.")
    _common(t)
    t.add_argument("--embeddings", action="append", default=[], metavar="DIR",
                   help="an output folder of `spatio embed` instead of a model (repeatable: one panel each)")
    t.add_argument("--max-samples", type=int, default=None, help="evenly spaced subset of the split")
    t.add_argument("--backend", default="sklearn", choices=BACKENDS, help="t-SNE implementation (default sklearn)")
    t.add_argument("--perplexity", type=float, default=30.0, help="t-SNE perplexity (capped at (N-1)/3)")
    t.add_argument("--pca-dims", type=int, default=50, help="PCA dimensions before t-SNE (default 50)")
    t.add_argument("--knn-k", type=int, default=5, help="k of the leave-one-out kNN score (default 5)")
    t.add_argument("--batch-size", type=int, default=8)
    t.add_argument("--jobs", type=int, default=1,
                   help="t-SNE threads (default 1: more threads beside torch's OpenMP pool were much slower on a "
                        "busy 2-core machine; raise it on a free many-core machine)")
    t.set_defaults(func=run_tsne)

    e = vsub.add_parser(
        "erf", help="effective receptive field of the centre of the last feature map",
        description="RepLKNet's ERF: gradient of relu(centre location of feature_map) summed over channels, "
                    "relu, summed over input channels, averaged over --num-inputs inputs, log10(x+1) and "
                    "normalised; high-contribution area ratios at t = 0.2, 0.3, 0.5, 0.99. One row per model.")
    _common(e)
    e.add_argument("--num-inputs", type=int, default=50, help="inputs averaged (default 50, as RepLKNet)")
    e.add_argument("--thresholds", type=float, nargs="+", default=list(THRESHOLDS), help="area-ratio thresholds")
    e.add_argument("--stage", nargs="+", default=None, metavar="S",
                   help="ERFs of intermediate levels (forward_intermediates): 'all', names such as stage4 / head (a "
                        "decoder head) / blocks.3, stage numbers (1-based) of hierarchies or block indices of flat "
                        "models; one panel per model and map")
    e.add_argument("--display-decades", type=float, default=None, metavar="D",
                   help="show the maps on a log scale over D orders of magnitude below the peak, so weak tails are "
                        "visible (default: RepLKNet's log10(x + 1) / max; the numbers always use RepLKNet's)")
    e.set_defaults(func=run_erf)

    a = vsub.add_parser(
        "attention", help="attention rollout overlaid on the frames / slices (PNG, optional GIF)",
        description="Attention rollout (Abnar & Zuidema; TimeSformer's figures): heads averaged, half identity for "
                    "the residual, block matrices multiplied; divided attention combines each block's temporal and "
                    "spatial attention (temporal first). The weights are recorded only here (SDPA hides them).")
    _common(a)
    a.add_argument("--max-samples", type=int, default=2, help="samples (rows), evenly spaced over the split")
    a.add_argument("--alpha", type=float, default=0.5, help="opacity of the map over the frames")
    a.add_argument("--gif", action="store_true", help="also write OUT.gif: the first sample's frames / slices")
    a.set_defaults(func=run_attention)

    g = vsub.add_parser(
        "saliency", help="gradient-based map of any model (input x gradient or Grad-CAM) over the frames / slices",
        description="The score: the target class's logit for classifiers; for segmenters, the sum of the target "
                    "class's logits over the voxels predicted as that class. input_x_gradient: |x * d score / d x| "
                    "summed over channels; gradcam: spatially averaged gradients of the score wrt the --stage "
                    "feature map weight its channels, relu of the sum, upsampled (bi/trilinear) to the input. "
                    "Writes OUT (PNG), OUT.npz (the maps) and OUT.json (settings, mass per frame / slice).")
    _common(g)
    g.add_argument("--method", default="input_x_gradient", choices=METHODS, help="default input_x_gradient")
    g.add_argument("--stage", default=None, metavar="NAME",
                   help="gradcam: the feature map, as `viz erf --stage` names them (stage1 ... / head); default "
                        "the model's last feature map")
    g.add_argument("--target", default="pred", metavar="pred|label|INDEX",
                   help="classifiers: the predicted class (pred, default), the sample's label, or a class index; "
                        "segmenters: a class index (pred / label: the most frequent predicted class other than 0)")
    g.add_argument("--max-samples", type=int, default=2, help="samples (rows), evenly spaced over the split")
    g.add_argument("--alpha", type=float, default=0.5, help="opacity of the map over the frames")
    g.set_defaults(func=run_saliency)


def _load_models(args):
    from ..viz.models import load_viz_model

    if not args.sources:
        raise UserInputError(f"spatio viz {args.viz_command}: give at least one --checkpoint or --model")
    device = resolve_device(args.device)
    models = [load_viz_model(**{("spec" if kind == "model" else kind): value}, device=device, seed=args.seed)
              for kind, value in args.sources]
    return models, device


def _samples(args, models, purpose: str, limit: int | None):
    """The first model's pipeline draws the samples, with the first model's recipe (see ``recipe_for_viz``)."""
    from ..viz.report import check_same_kind

    pipeline = get_pipeline(check_same_kind(models))
    first = models[0]
    checkpoint = first.source if first.source_kind == "checkpoint" else None
    recipe = pipeline.recipe_for_viz(first.model, checkpoint, args.data, args.data_root, args.img_size,
                                     args.num_frames)
    return pipeline.viz_samples(recipe, args.split, limit, purpose)


def _f(v) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def run_tsne(args) -> int:
    from ..viz.report import tsne_of_embedding_files, tsne_report

    if args.embeddings:
        if args.sources:
            raise UserInputError("spatio viz tsne: give --embeddings or models (--checkpoint / --model), not both")
        rep = tsne_of_embedding_files(args.embeddings, args.out, backend=args.backend, perplexity=args.perplexity,
                                      pca_dims=args.pca_dims, k=args.knn_k, seed=args.seed,
                                      progress=not args.no_progress, n_jobs=args.jobs)
        _print_tsne(args, rep)
        return 0
    models, device = _load_models(args)
    samples = _samples(args, models, "tsne", args.max_samples)
    print(f"t-SNE of {len(models)} model(s) on {samples.description}")
    rep = tsne_report(models, samples, args.out, args.backend, args.perplexity, args.pca_dims, args.knn_k,
                      args.seed, args.batch_size, device, not args.no_progress, args.jobs)
    _print_tsne(args, rep)
    return 0


def _print_tsne(args, rep: dict) -> None:
    print(f"{rep['num_samples']} samples, classes {rep['class_counts']}")
    for p in rep["panels"]:
        print(f"  {p['label']} [{p['mixer']}]: kNN-{args.knn_k} acc 2D {_f(p['knn_acc_2d'])}, silhouette 2D "
              f"{_f(p['silhouette_2d'])} | PCA features: kNN {_f(p['knn_acc_features'])}, silhouette "
              f"{_f(p['silhouette_features'])}")
    print(f"wrote {rep['png']}, {rep['npz']}, {rep['png'][:-4]}.json")


def run_erf(args) -> int:
    from ..viz.report import erf_report

    models, device = _load_models(args)
    samples = _samples(args, models, "erf", args.num_inputs)
    print(f"ERF of {len(models)} model(s) on {samples.description}")
    rep = erf_report(models, samples, args.out, args.thresholds, device, not args.no_progress, args.display_decades,
                     args.stage)
    for m in rep["models"]:
        print(f"  {m['label']} [{m['mixer']}]: {m['num_inputs']} inputs, map {m['shape']}, support {m['support']}")
        for r in m["area_ratios"]:
            note = "" if r["reached"] else " (not reached)"
            print(f"    t={r['threshold']:g}: side {r['side']}, area ratio {r['area_ratio']:.4f}{note}")
        if "temporal_ratios" in m:
            frames = ", ".join(f"t={r['threshold']:g}: {r['side']}" for r in m["temporal_ratios"])
            print(f"    frames (centred window) {frames}; mass per frame "
                  + " ".join(f"{v:.2f}" for v in m["frame_mass"]))
    print(f"wrote {rep['png']}, {rep['npz']}, {rep['png'][:-4]}.json")
    return 0


def run_attention(args) -> int:
    from ..viz.attention_report import attention_report

    models, device = _load_models(args)
    if len(models) != 1:
        raise UserInputError("spatio viz attention draws one model: give one --checkpoint or --model")
    samples = _samples(args, models, "erf", args.max_samples)
    rep = attention_report(models[0], samples, args.out, device, args.alpha, args.gif)
    for s in rep["samples"]:
        key = "mass_per_frame" if "mass_per_frame" in s else "mass_per_slice"
        print(f"  {s['class']}: grid {s['grid']}, {key.replace('_', ' ')} " + " ".join(f"{v:.2f}" for v in s[key]))
    print(f"wrote {rep['png']}, {rep['npz']}, {rep['png'][:-4]}.json" + (f", {rep['gif']}" if "gif" in rep else ""))
    return 0


def run_saliency(args) -> int:
    from ..viz.saliency_report import saliency_report

    models, device = _load_models(args)
    if len(models) != 1:
        raise UserInputError("spatio viz saliency draws one model: give one --checkpoint or --model")
    samples = _samples(args, models, "erf", args.max_samples)
    rep = saliency_report(models[0], samples, args.out, device, method=args.method, stage=args.stage,
                          target=args.target, alpha=args.alpha)
    for s in rep["samples"]:
        key = next((k for k in ("mass_per_frame", "mass_per_slice") if k in s), None)
        mass = f", {key.replace('_', ' ')} " + " ".join(f"{v:.2f}" for v in s[key]) if key else ""
        print(f"  {s['class']}: target {s['target_name']}, map {s['shape']}{mass}")
    print(f"wrote {rep['png']}, {rep['npz']}, {rep['png'][:-4]}.json")
    return 0
