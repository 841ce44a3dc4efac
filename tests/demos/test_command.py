"""``cheeger demo ...`` through the real CLI: outputs written, one-line errors with status 1,
windows refused without a display, ``--run`` with a run folder."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from cheeger.cli import main
from cheeger.models import UNet
from cheeger.training.checkpoint import save_checkpoint


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    """A run folder holding a U-Net checkpoint as `cheeger train` writes it (best.pt)."""
    run = tmp_path_factory.mktemp("run")
    torch.manual_seed(0)
    model = UNet(num_classes=3, depth=2, width=4)
    save_checkpoint(run / "best.pt", {"model_spec": model.spec(), "model": model.state_dict()})
    return run


def test_similarity_writes_the_figure(camvid_frame, tmp_path, capsys):
    out = tmp_path / "similarity.png"
    status = main(["demo", "similarity", str(camvid_frame[0]), "--query", "40,240",
                   "--out", str(out), "--long-side", "40", "--threads", "1"])  # fmt: skip
    assert status == 0 and capsys.readouterr().out.strip().endswith(str(out))
    with Image.open(out) as png:
        assert png.format == "PNG"


def test_live_writes_a_gif_and_reports_the_rate_last(camvid_folder, tmp_path, capsys):
    out = tmp_path / "live.gif"
    status = main(["demo", "live", "--source", str(camvid_folder), "--frames", "3",
                   "--query", "40,240", "--out", str(out), "--long-side", "30"])  # fmt: skip
    assert status == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("3 frames in ") and "frames per second" in last
    with Image.open(out) as gif:
        assert gif.n_frames == 3


@pytest.mark.parametrize(("argv", "message"), [
    (["similarity", "{frame}", "--query", "360,0", "--out", "{tmp}/a.png"],
     "outside the 360x480 image"),
    (["similarity", "{frame}", "--query", "x", "--out", "{tmp}/a.png"], "expected ROW,COL"),
    (["similarity", "{tmp}/missing.png", "--query", "1,1", "--out", "{tmp}/a.png"],
     "missing.png: image not found"),
    (["live", "--source", "63", "--out", "{tmp}/a.gif"], "webcam 63"),
    (["live", "--source", "{tmp}/missing.mp4", "--out", "{tmp}/a.gif"], "source not found"),
    (["live", "--source", "{frame}", "--out", "{tmp}/a.txt"], "expected .gif or a video"),
    (["similarity", "{frame}", "--query", "1,1", "--run", "{tmp}", "--out", "{tmp}/a.png"],
     "no best.pt or checkpoint"),
    (["dashboard", "{tmp}/missing"], "run folder"),
])  # fmt: skip
def test_bad_input_prints_one_line_and_exits_1(argv, message, camvid_frame, tmp_path, capsys):
    argv = [a.format(frame=camvid_frame[0], tmp=tmp_path) for a in argv]
    assert main(["demo", *argv]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"cheeger demo {argv[0]}: error: ")
    assert message in err


@pytest.mark.parametrize("demo", [["similarity", "{frame}", "--query", "1,1"],
                                  ["live", "--source", "{frame}"]])  # fmt: skip
def test_no_out_without_a_display_is_refused(demo, camvid_frame, monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["demo", *(a.format(frame=camvid_frame[0]) for a in demo)]) == 1
    assert "no --out and no display" in capsys.readouterr().err


def test_run_option_uses_the_run(run_folder, camvid_frame, tmp_path):
    out = tmp_path / "run.png"
    assert main(["demo", "similarity", str(camvid_frame[0]), "--query", "40,240", "--out",
                 str(out), "--run", str(run_folder), "--long-side", "40"]) == 0  # fmt: skip
    assert out.is_file()
