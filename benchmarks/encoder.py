"""Cost of the pretrained EfficientNet-Lite0 encoder, and of a step on its cached taps.

Sizes the frozen vs fine-tuned choice of ``model.freeze_encoder``. For each thread count and
input size (batch 8, float32, random images and labels, 11 classes as CamVid), it times:

* ``encoder fwd``: the encoder's taps without autograd (what a frozen run, or the feature cache,
  pays once per image and flip);
* ``encoder fwd+bwd``: taps with autograd and a backward pass through them (what fine-tuning adds
  to every step);
* ``unet+conv step``: the rival, today's from-scratch U-Net (``params.yaml`` model section) with
  the conv head, one full training step (forward, cross-entropy, backward, AdamW update);
* ``dec+conv step`` / ``dec+spectral step``: one training step of the FPN decoder and a head on
  cached float16 taps (what every step of a frozen run costs); the spectral head takes the
  ``spectral.head`` settings of ``params.yaml`` with ``stride`` counted from the decoder's
  stride-4 map (``--spectral-strides``), fresh weights (a trained graph's eigensolve may cost
  more or less).

Every time is the mean over ``--repeats`` runs after one untimed warm-up, as wall-clock and as
process CPU time (on a shared machine the wall time grows with the load, printed beside it; the
CPU time of a one-thread run does not). The table gives each and its ratio to the U-Net step
measured in the same run and thread count.

Usage::

    .venv/bin/python benchmarks/encoder.py --threads 1 2 --sizes 360x480 180x240

It prints a table and writes JSON (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from cheeger.config import ModelConfig, head_options, load_params
from cheeger.models import LiteFPN, UNet

REPO = Path(__file__).resolve().parents[1]
CLASSES = 11


def _timed(fn: Callable[[], None], repeats: int) -> tuple[float, float]:
    """Mean wall-clock and process CPU seconds per call (CPU time is what a shared, loaded
    machine distorts least: with one thread it is the wall time the call would take alone)."""
    fn()  # warm-up: one-off allocations
    wall, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return statistics.mean(wall), statistics.mean(cpu)


def _step(model: torch.nn.Module, run: Callable[[], object], labels: torch.Tensor
          ) -> Callable[[], None]:  # fmt: skip
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)

    def step() -> None:
        out = run()
        loss = F.cross_entropy(out.logits, labels) + sum(out.losses.values(), torch.zeros(()))
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def measure(size: tuple[int, int], threads: int, batch: int, repeats: int,
            spectral_strides: list[int]) -> dict[str, tuple[float, float]]:  # fmt: skip
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    params = load_params(REPO / "params.yaml")
    images = torch.randn(batch, 3, *size)  # (B, 3, H, W)
    labels = torch.randint(0, CLASSES, (batch, *size))
    times: dict[str, tuple[float, float]] = {}

    m = ModelConfig.from_params(params, "camvid")
    unet = UNet(CLASSES, depth=m.depth, width=m.width, norm=m.norm, groups=m.groups).train()
    times["unet+conv step"] = _timed(_step(unet, lambda: unet(images), labels), repeats)

    tuned = LiteFPN(CLASSES, freeze_encoder=False).train()
    with torch.no_grad():
        tuned.eval()
        times["encoder fwd"] = _timed(lambda: tuned.encode(images), repeats)
        taps = [t.half() for t in tuned.encode(images)]  # what the cache stores
    tuned.train()

    def fwd_bwd() -> None:
        tuned.zero_grad()
        sum(t.mean() for t in tuned.encode(images)).backward()

    times["encoder fwd+bwd"] = _timed(fwd_bwd, repeats)

    frozen = LiteFPN(CLASSES).train()
    run = lambda: frozen.forward_from_taps(taps, size)  # noqa: E731
    times["dec+conv step"] = _timed(_step(frozen, run, labels), repeats)
    options = head_options(params, "spectral", "camvid")
    for stride in spectral_strides:
        spectral = LiteFPN(CLASSES, head="spectral",
                           head_options={**options, "stride": stride}).train()  # fmt: skip
        run = lambda model=spectral: model.forward_from_taps(taps, size)  # noqa: E731
        times[f"dec+spectral step (graph 1/{4 * stride})"] = _timed(
            _step(spectral, run, labels), repeats)  # fmt: skip
    return times


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--sizes", nargs="+", default=["360x480", "180x240"])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--spectral-strides", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/encoder.json"))
    args = parser.parse_args(argv)
    rows = []
    for threads in args.threads:
        for size in args.sizes:
            h, w = (int(s) for s in size.split("x"))
            times = measure((h, w), threads, args.batch, args.repeats, args.spectral_strides)
            rival_wall, rival_cpu = times["unet+conv step"]
            for name, (wall, cpu) in times.items():
                rows.append({"threads": threads, "size": size, "batch": args.batch, "what": name,
                             "wall_s": wall, "cpu_s": cpu, "wall_ratio": wall / rival_wall,
                             "cpu_ratio": cpu / rival_cpu, "load": os.getloadavg()[0]})
                print(f"{threads:>2} thr {size:>8}  {name:<34} wall {wall:7.3f} s "
                      f"(x{wall / rival_wall:5.2f})  cpu {cpu:7.3f} s (x{cpu / rival_cpu:5.2f} of "
                      f"the U-Net step)  load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(rows, indent=1))
    tmp.replace(args.out)  # atomic


if __name__ == "__main__":
    main()
