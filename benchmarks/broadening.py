"""Gradient fidelity of the broadened backward on CamVid frames, per rule for ``eps``.

A thin command line over :mod:`cheeger.study.broadening` (the measurement, its closed-form
reference and the two rules ``rms`` and ``gap``; read its docstring): it reads CamVid frames
instead of a prepared split, adds the raw eigenvector loss, and prints the bottom spectrum and the
median and max relative error per size, loss, rule and eps. One thread, float64. The study runs
the same sweep as ``cheeger broadening`` (``study.broadening`` in params.yaml).

Usage:
    python benchmarks/broadening.py --frames 4 --out results/broadening.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cheeger.data.io import read_rgb  # noqa: E402
from cheeger.study.broadening import (  # noqa: E402
    BroadeningConfig,
    broadening_sweep,
    summarize,
    write_table,
)


def _frames(root: Path, count: int) -> list[tuple[str, object]]:
    folder = root / "test"
    files = sorted(folder.glob("*.png"))
    if not files:
        raise SystemExit(f"no frames in {folder} (pass --camvid)")
    step = max(1, len(files) // count)
    return [(f.name, read_rgb(f)) for f in files[::step][:count]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--camvid", type=Path, default=ROOT.parent / "shared/data/camvid")
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="write the rows as JSON here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    config = BroadeningConfig(frames=args.frames, k=args.k, seed=args.seed,
                              losses=("filtered", "eigenvector"))  # fmt: skip
    table = broadening_sweep(_frames(args.camvid, args.frames), config)
    spectra = table.groupby("size")[["min_gap", "mean_gap", "gap_k", "scale"]].median()
    print("bottom spectrum (median over frames):")
    print(spectra.to_markdown(floatfmt=".2e"))
    print("\nrelative gradient error against the exact backward (median, max over frames):")
    print(summarize(table).to_markdown(index=False, floatfmt=".2e"))
    if args.out:
        write_table(table, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
