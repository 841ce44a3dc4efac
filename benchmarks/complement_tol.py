"""Cost and fidelity of the eigsh backward's complement solve, per tolerance (``backward_tol``).

The full backward of a partial eigensolve solves, per eigenvector, a shifted system on the
complement of the computed block (:func:`cheeger.linalg.backward.complement_term`); in a training
step (float32) it is most of the eigensolver's backward. This measures, on the spectral head of
the frozen-encoder CamVid model (EfficientNet-Lite0 taps of real frames, FPN decoder, the head's
45 x 60 graph at 360 x 480, k = 16, ``eps_rule: gap``), what a looser tolerance costs in gradient
fidelity and gains in time:

* reference: the same model and frames in float64 with ``backward_tol = 1e-10``;
* per tolerance, float32 (as training runs): the relative error of the gradient of every
  decoder and head parameter against the reference, ``||g - g_ref|| / ||g_ref||``, and the
  median time of the whole backward pass, with its ratio to the float32 default (1e-5) measured
  in the same run.

The loss is a fixed random projection of the logits (the same in every run), so the gradient
flows through the eigenvectors as the cross-entropy's does. The decoder and head start from
their seeded initialisation unless ``--checkpoint`` names a run's ``best.pt`` (trained weights).
One thread.

Usage:
    python benchmarks/complement_tol.py --frames 8 --repeats 3
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cheeger.data.io import read_rgb  # noqa: E402
from cheeger.models import build_model  # noqa: E402
from cheeger.models.encoders import LITE0_MEAN, LITE0_STD  # noqa: E402

TOLS = (None, 1e-4, 1e-3, 1e-2)  # None: eigsh's float32 default, 1e-5


def _frames(root: Path, count: int) -> torch.Tensor:
    files = sorted((root / "test").glob("*.png"))
    if not files:
        raise SystemExit(f"no frames in {root / 'test'} (pass --camvid)")
    step = max(1, len(files) // count)
    images = [torch.from_numpy(read_rgb(f)).permute(2, 0, 1).float() / 255
              for f in files[::step][:count]]  # fmt: skip
    x = torch.stack(images)  # (B, 3, 360, 480) in [0, 1]
    # as the model's defaults expect (input_mean / input_std: the encoder's own normalisation)
    mean, std = torch.tensor(LITE0_MEAN).view(1, 3, 1, 1), torch.tensor(LITE0_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def _model(options: dict, checkpoint: Path | None) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model("efficientnet_lite0", 11, decoder_width=64, freeze_encoder=True,
                        head="spectral", head_options=options)  # fmt: skip
    if checkpoint is not None:
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
    return model.eval()  # eval BN; the head's noise edge is not part of this gradient


def _gradient(model, taps, size, weights) -> tuple[torch.Tensor, float]:
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        p.grad = None
    out = model.head(model.decoder(taps), size)  # forward_from_taps would cast to float32
    loss = (out.logits * weights.to(out.logits.dtype)).sum()
    start = time.perf_counter()
    loss.backward()
    seconds = time.perf_counter() - start
    return torch.cat([p.grad.reshape(-1).double() for p in params]), seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--camvid", type=Path, default=ROOT.parent / "shared/data/camvid")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--checkpoint", type=Path, help="a run's best.pt (trained weights)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    x = _frames(args.camvid, args.frames)
    base = _model({"stride": 2, "k": 16, "eps": 1e-3, "solver": {"eps_rule": "gap"}},
                  args.checkpoint)  # fmt: skip
    with torch.no_grad():
        taps = [t.detach() for t in base.encode(x)]
    size = x.shape[-2:]
    weights = torch.randn(x.shape[0], 11, *size, generator=torch.Generator().manual_seed(1))
    ref_model = copy.deepcopy(base).double()
    ref_model.head.cfg.solver = {"eps_rule": "gap", "backward_tol": 1e-10}
    ref, _ = _gradient(ref_model, [t.double() for t in taps], size, weights)
    rows = []
    for tol in TOLS:
        model = copy.deepcopy(base)
        model.head.cfg.solver = {"eps_rule": "gap", **({} if tol is None else
                                                       {"backward_tol": tol})}  # fmt: skip
        runs = [_gradient(model, taps, size, weights) for _ in range(args.repeats)]
        grad = runs[0][0]
        error = float((grad - ref).norm() / ref.norm())
        rows.append((tol, error, statistics.median(s for _, s in runs)))
    default = rows[0][2]
    print(f"{args.frames} CamVid test frames, Lite0 taps, spectral head 45x60 graph, k=16, "
          f"{'trained' if args.checkpoint else 'initial'} weights, float32, 1 thread")
    print(f"{'backward_tol':>12} {'grad rel. error':>16} {'backward s':>11} {'ratio':>6}")
    for tol, error, seconds in rows:
        label = "1e-05 (def.)" if tol is None else f"{tol:g}"
        print(f"{label:>12} {error:16.2e} {seconds:11.3f} {seconds / default:6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
