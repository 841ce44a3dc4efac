"""Training-step cost of the spectral head against the conv head, same backbone and batch.

For each profile's resolution (from ``params.yaml``), one optimisation step (forward, loss,
backward, AdamW update) of the profile's backbone (``model.encoder``: U-Net, or EfficientNet-Lite0
+ FPN, built by ``cheeger.models.build_model``) with the conv head and with the spectral head is
timed with the same thread count (a frozen Lite0 encoder runs in every step here: the feature
cache is not used), and the spectral step is broken down (graph, eigensolve, noise floor, the
rest) with the autograd profiler's record_function ranges of a separate step. The step time is
the mean over ``--repeats`` steps; the spectral head re-estimates its noise floor every
``noise_every`` steps (10 in params.yaml), so ``--repeats`` (default 10) a multiple of it
includes that cost at its real rate. The profiled breakdown step follows the timed ones and
may not include it.

By default the images are random and the models fresh. A graph's spectrum, and so the
eigensolver's work, changes with training: ``--data`` takes real training images from a prepared
dataset and ``--runs`` loads each head's trained weights (seed 0, checkpoint ``best.pt``), both
as patterns with ``{profile}``; ``--weights HEAD=PATH`` names one checkpoint (e.g. a trial
run's); the table says which weights ran, and whether they were trained with other settings.

Peak memory is the process's peak RSS growth during each head's steps, measured in a fresh
subprocess per head (``resource.getrusage``), since torch's CPU allocations are invisible to
``tracemalloc``.

Usage::

    .venv/bin/python benchmarks/heads.py                      # embedded and camvid profiles
    .venv/bin/python benchmarks/heads.py --profiles camvid --threads 1 \
        --set spectral.head.stride=4 --data 'results/prepared/{profile}' \
        --weights spectral=results/trial/camvid/runs/stride4/seed0/best.pt
    .venv/bin/python benchmarks/heads.py --profiles camvid --threads 1 --repeats 10 \
        --data 'results/prepared/{profile}' --runs 'results/runs/{profile}'

It prints a table with the spectral / conv ratios and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from cheeger.config import ModelConfig, head_options, load_params
from cheeger.models import build_model
from cheeger.study.variants import params_variant, parse_setting

REPO = Path(__file__).resolve().parents[1]


def _model(params: dict, head: str, num_classes: int, profile: str,
           normalization: dict | None = None) -> torch.nn.Module:  # fmt: skip
    """The profile's model as training builds it: a Lite0 encoder is told the prepared data's
    normalisation (``normalization``, the manifest's), which it maps to its own inputs'."""
    m = ModelConfig.from_params(params, profile)
    options = head_options(params, head, profile)
    lite = {}
    if normalization is not None and m.encoder != "unet":
        lite = {"input_mean": normalization["mean"], "input_std": normalization["std"]}
    return build_model(m.encoder, num_classes, depth=m.depth, width=m.width, norm=m.norm,
                       groups=m.groups, decoder_width=m.decoder_width,
                       freeze_encoder=m.freeze_encoder, head=head, head_options=options,
                       **lite)  # fmt: skip


def _step_times(model, images, labels, repeats):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    times = []
    for i in range(repeats + 1):
        t = time.perf_counter()
        out = model(images)
        loss = torch.nn.functional.cross_entropy(out.logits, labels, ignore_index=255)
        loss = loss + sum(out.losses.values(), torch.zeros(()))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i:  # the first step pays one-off costs (allocations, caches)
            times.append(time.perf_counter() - t)
    return times


def _breakdown(model, images, labels) -> dict[str, float]:
    """Self CPU time (s) of the spectral head's stages in one step, from the profiler."""
    from torch.profiler import profile

    with profile() as prof:
        out = model(images)
        loss = torch.nn.functional.cross_entropy(out.logits, labels, ignore_index=255)
        (loss + sum(out.losses.values(), torch.zeros(()))).backward()
    totals: dict[str, float] = {}
    for event in prof.key_averages():
        name = event.key
        if name.startswith(("_EigshFunction", "cheeger::")) or "Eigsh" in name:
            totals[name] = totals.get(name, 0.0) + event.cpu_time_total / 1e6
    return totals


def _batch(profile: str, block: dict, batch: int, data: str | None, num_classes: int):
    height, width = block["resolution"]
    if data is None:
        images = torch.randn(batch, 3, height, width)
        labels = torch.randint(0, num_classes, (batch, height, width))
        return images, labels
    from cheeger.data.dataset import PreparedDataset

    dataset = PreparedDataset(data.format(profile=profile), "train")
    items = [dataset[i] for i in range(min(batch, len(dataset)))]
    return (torch.stack([it["image"] for it in items]),
            torch.stack([it["label"] for it in items]).long())  # fmt: skip


def _load_weights(model: torch.nn.Module, path: Path, required: bool) -> str:
    """Load a checkpoint's weights; say which, and whether they were trained with other model
    settings (e.g. another stride: the shapes match, the graph does not)."""
    from cheeger.training.checkpoint import load_checkpoint

    if not path.is_file():
        if required:
            raise SystemExit(f"heads benchmark: {path}: no checkpoint")
        return f"initial (no {path})"
    state = load_checkpoint(path)
    model.load_state_dict(state["model"])
    differs = sorted(k for k, v in model.spec().items() if state.get("model_spec", {}).get(k) != v)
    return str(path) + (f" (trained with other {differs})" if differs else "")


def _measure(profile: str, head: str, batch: int, repeats: int, threads: int,
             data: str | None = None, runs: str | None = None,
             settings: list[str] | None = None, weights: str | None = None) -> dict:  # fmt: skip
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    params = load_params(REPO / "params.yaml")
    if settings:  # e.g. spectral.head.stride=4, as `cheeger variant --set` reads it
        params = params_variant(params, dict(map(parse_setting, settings)), profile)
    block = params["profiles"][profile]
    num_classes = {"synthetic": 9, "camvid": 11, "cityscapes": 19}[block["dataset"]]
    normalization = None
    if data is not None:  # the images are normalised as the data: the model must know how
        from cheeger.data.prepared import load_manifest

        normalization = load_manifest(data.format(profile=profile))["normalization"]
    model = _model(params, head, num_classes, profile, normalization)
    if weights is not None:  # this head's checkpoint, asked for by name: it must exist
        weights = _load_weights(model, Path(weights), required=True)
    elif runs is not None:  # conv's cost does not depend on its weights: it may lack them
        path = Path(runs.format(profile=profile)) / head / "seed0" / "best.pt"
        weights = _load_weights(model, path, required=False)
    else:
        weights = "initial"
    images, labels = _batch(profile, block, batch, data, num_classes)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = _step_times(model, images, labels, repeats)
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = {
        "profile": profile, "head": head, "resolution": list(images.shape[-2:]),
        "batch": batch, "threads": threads, "step_s": statistics.mean(times), "steps": times,
        "images": "random" if data is None else data.format(profile=profile),
        "weights": weights, "settings": settings or [], "peak_rss_growth_mib": (rss1 - rss0) / 1024,
        "parameters": sum(p.numel() for p in model.parameters()),
    }  # fmt: skip
    if head == "spectral":
        result["profile_s"] = _breakdown(model, images, labels)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", nargs="+", default=["embedded", "camvid"])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=10,
                        help="timed steps (default 10: one noise-floor period)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data", help="prepared data folder pattern, e.g. 'results/prepared/"
                        "{profile}' (default: random images)")  # fmt: skip
    parser.add_argument("--runs", help="run folder pattern holding <head>/seed0/best.pt, e.g. "
                        "'results/runs/{profile}' (default: fresh models)")  # fmt: skip
    parser.add_argument("--weights", action="append", default=[], metavar="HEAD=PATH",
                        help="a head's checkpoint, e.g. spectral=results/trial/camvid/runs/"
                        "stride4/seed0/best.pt (overrides --runs for that head)")  # fmt: skip
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="change a params.yaml setting, e.g. spectral.head.stride=4")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/out/heads.json")
    parser.add_argument("--child", nargs=2, metavar=("PROFILE", "HEAD"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        weights = dict(w.split("=", 1) for w in args.weights).get(args.child[1])
        print(json.dumps(_measure(*args.child, args.batch, args.repeats, args.threads,
                                  args.data, args.runs, args.set, weights)))  # fmt: skip
        return 0
    rows = []
    for profile in args.profiles:
        pair = {}
        for head in ("conv", "spectral"):  # one subprocess each: clean peak-RSS accounting
            cmd = [sys.executable, __file__, "--child", profile, head, "--batch", str(args.batch),
                   "--repeats", str(args.repeats), "--threads", str(args.threads)]  # fmt: skip
            cmd += [f"--{k}={v}" for k, v in (("data", args.data), ("runs", args.runs)) if v]
            cmd += [f"--set={setting}" for setting in args.set]
            cmd += [f"--weights={w}" for w in args.weights]
            env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
            done = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if done.returncode != 0:  # show the child's error, not only its exit status
                sys.stderr.write(done.stderr)
                raise SystemExit(f"heads benchmark: {profile}/{head} failed ({done.returncode})")
            pair[head] = json.loads(done.stdout.strip().splitlines()[-1])
        ratio = pair["spectral"]["step_s"] / pair["conv"]["step_s"]
        rows.append({"profile": profile, **{h: pair[h] for h in pair}, "ratio": ratio})
    print(f"{'profile':<10} {'HxW':>9} {'B':>3} {'conv s':>8} {'spectral s':>11} {'ratio':>6} "
          f"{'conv MiB':>9} {'spec MiB':>9}")  # fmt: skip
    for r in rows:
        c, s = r["conv"], r["spectral"]
        hw = "x".join(map(str, c["resolution"]))
        print(f"{r['profile']:<10} {hw:>9} {c['batch']:>3} {c['step_s']:>8.3f} "
              f"{s['step_s']:>11.3f} {r['ratio']:>6.2f} {c['peak_rss_growth_mib']:>9.0f} "
              f"{s['peak_rss_growth_mib']:>9.0f}")  # fmt: skip
        print(f"    images {s['images']}; spectral weights {s['weights']}; conv weights "
              f"{c['weights']}; settings {s['settings'] or 'params.yaml'}")
        for name, sec in sorted(s.get("profile_s", {}).items(), key=lambda kv: -kv[1]):
            print(f"    spectral step, {name}: {sec:.3f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    os.replace(tmp, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
