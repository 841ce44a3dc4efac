"""``cheeger train`` / ``cheeger evaluate`` end to end, and the evaluation against references."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml

from cheeger.cli import main
from cheeger.config import EvaluateConfig
from cheeger.data import PreparedDataset
from cheeger.evaluate import evaluate_run
from cheeger.metrics import boundary_iou, mean_iou
from cheeger.models import UNet
from cheeger.training import RunNotFoundError, TrainingError, load_checkpoint

PARAMS = {
    "profile": "tiny",
    "profiles": {"tiny": {"dataset": "synthetic", "root": None, "resolution": [32, 40]},
                 "other": {"dataset": "synthetic", "root": None, "resolution": [32, 40]}},
    "data": {"synthetic": {"seed": 5, "size": [48, 64],  # native labels larger than the input
                           "splits": {"train": 6, "val": 3, "test": 3}}},
    "model": {"depth": 2, "width": 4},
    "train": {"epochs": 3, "batch_size": 3, "lr": 0.01, "device": "cpu"},
    "evaluate": {"batch_size": 2},
}  # fmt: skip


def _strict_json(path):
    def refuse(constant):
        raise ValueError(f"{path}: {constant} is not JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(params file, prepared data, finished run), made through the CLI."""
    root = tmp_path_factory.mktemp("cli")
    params = root / "params.yaml"
    params.write_text(yaml.safe_dump(PARAMS))
    data, run = root / "prepared", root / "runs" / "conv" / "0"
    assert main(["prepare", "--params", str(params), "--out", str(data)]) == 0
    threads = torch.get_num_threads()
    try:
        code = main(["train", "--params", str(params), "--head", "conv", "--seed", "0", "--data",
                     str(data), "--out", str(run), "--threads", "1", "--no-progress"])  # fmt: skip
        assert code == 0 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    return params, data, run


def test_cli_evaluate_writes_every_metric_as_strict_json(trained, tmp_path, capsys):
    params, data, run = trained
    out = tmp_path / "metrics" / "test.json"
    assert main(["evaluate", "--params", str(params), "--run", str(run), "--data", str(data),
                 "--split", "test", "--out", str(out)]) == 0  # fmt: skip
    assert "on test: mIoU" in capsys.readouterr().out
    m = _strict_json(out)
    final = _strict_json(run / "final.json")
    assert (m["head"], m["seed"], m["split"], m["num_images"]) == ("conv", 0, "test", 3)
    assert m["checkpoint"] == "best" and m["epoch"] == final["best"]["epoch"]
    assert m["selected_on"] == {"split": "val", "metric": "miou", "value": final["best"]["value"]}
    assert m["data_matches_training"] is True
    assert m["resolution"] == {"input": [32, 40], "labels": "native", "native_sizes": [[48, 64]]}
    assert m["boundary"] == {"ratio": 0.02, "width_px": {"48x64": 2}}  # round(0.02 * 80)
    for key in ("miou", "pixel_accuracy", "class_accuracy", "boundary_miou", "excess_components",
                "stray_pixels", "stray_fraction", "gt_excess_components", "gt_stray_pixels",
                "gt_stray_fraction"):  # fmt: skip
        assert key in m
    names = m["class_names"]
    assert len(names) == 9 and all(list(v) == names for v in m["per_class"].values())
    assert set(m["per_class"]) == {"iou", "boundary_iou", "excess_components",
                                   "gt_excess_components", "accuracy"}  # fmt: skip
    assert np.array(m["confusion_matrix"]).shape == (9, 9)


def test_metrics_match_references_computed_from_the_model_directly(trained):
    _, data, run = trained
    m = evaluate_run(run, data, "test", EvaluateConfig(batch_size=3), "cpu")
    best = load_checkpoint(run / "best.pt")
    model = UNet.from_spec(best["model_spec"]).eval()
    model.load_state_dict(best["model"])
    model = model.to(memory_format=torch.channels_last)  # as trained (train.channels_last)
    dataset = PreparedDataset(data, "test", native=True)
    preds, targets = [], []
    with torch.no_grad():
        for item in dataset:
            image = item["image"][None].contiguous(memory_format=torch.channels_last)
            logits = F.interpolate(model(image).logits, size=item["native_label"].shape,
                                   mode="bilinear", align_corners=False)  # fmt: skip
            preds.append(logits[0].argmax(0))
            targets.append(item["native_label"])
    iou, miou = mean_iou(preds, targets, 9, 255)
    _, bmiou = boundary_iou(preds, targets, 9, 255)
    assert m["miou"] == pytest.approx(float(miou), abs=1e-12)
    assert m["boundary_miou"] == pytest.approx(float(bmiou), abs=1e-12)
    ious = [m["per_class"]["iou"][name] for name in m["class_names"]]
    assert ious == pytest.approx([None if np.isnan(v) else v for v in iou.tolist()], abs=1e-12)
    p, t = torch.cat([x.flatten() for x in preds]), torch.cat([x.flatten() for x in targets])
    valid = t != 255
    confusion = np.zeros((9, 9), dtype=np.int64)  # plain numpy oracle
    np.add.at(confusion, (t[valid].numpy(), p[valid].numpy()), 1)
    assert m["confusion_matrix"] == confusion.tolist()
    assert m["pixel_accuracy"] == pytest.approx(np.trace(confusion) / confusion.sum())
    rows = confusion.sum(1)
    recall = np.diag(confusion)[rows > 0] / rows[rows > 0]
    assert m["class_accuracy"] == pytest.approx(recall.mean())


def test_last_checkpoint_on_val_reproduces_the_training_validation_exactly(trained):
    _, data, run = trained
    final = json.loads((run / "final.json").read_text())
    m = evaluate_run(run, data, "val", EvaluateConfig(checkpoint="last"), "cpu")
    assert m["epoch"] == 3 and m["selected_on"] is None
    for key in ("miou", "boundary_miou", "pixel_accuracy", "excess_components", "stray_fraction"):
        assert m[key] == final["val"][key], key
    assert m["per_class"]["iou"] == final["val"]["per_class"]["iou"]


def test_unfinished_run_is_refused(trained, tmp_path, capsys):
    params, data, run = trained
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    (copy / "final.json").unlink()
    with pytest.raises(RunNotFoundError, match=r"no final\.json; the run has not finished"):
        evaluate_run(copy, data, "test", EvaluateConfig())
    code = main(["evaluate", "--params", str(params), "--run", str(copy), "--data", str(data),
                 "--out", str(tmp_path / "m.json")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("cheeger evaluate: error:") and "Traceback" not in err
    assert not (tmp_path / "m.json").exists()


def test_data_with_other_classes_is_refused(trained, tmp_path):
    _, data, run = trained
    other = tmp_path / "data"
    shutil.copytree(data, other)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["class_names"][0] = "ocean"
    (other / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(TrainingError, match="differ from those the run"):
        evaluate_run(run, other, "test", EvaluateConfig())


def test_cli_train_errors(trained, tmp_path, capsys):
    params, data, _ = trained
    with pytest.raises(SystemExit) as info:
        main(["train", "--params", str(params), "--head", "mystery", "--seed", "0",
              "--data", str(data), "--out", str(tmp_path / "r")])  # fmt: skip
    assert info.value.code == 2 and "invalid choice: 'mystery'" in capsys.readouterr().err
    code = main(["train", "--params", str(params), "--profile", "other", "--head", "conv",
                 "--seed", "0", "--data", str(data), "--out", str(tmp_path / "r")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and "was prepared for profile 'tiny' but the active profile is 'other'" in err
    code = main(["train", "--params", str(params), "--head", "conv", "--seed", "0", "--data",
                 str(data), "--out", str(tmp_path / "r"), "--device", "cuda"])  # fmt: skip
    if not torch.cuda.is_available():
        assert code == 1 and "CUDA is not available" in capsys.readouterr().err


def test_conv_head_has_no_spectral_block(trained):
    _, data, run = trained
    assert evaluate_run(run, data, "test", EvaluateConfig(batch_size=3), "cpu")["spectral"] is None


def test_spectral_head_reports_a_per_image_noise_edge(tmp_path):
    params = tmp_path / "params.yaml"
    settings = {**PARAMS, "train": {**PARAMS["train"], "epochs": 1},
                "spectral": {"head": {"stride": 2, "k": 4, "graph_channels": 4, "rank": 2,
                                      "noise_every": 5}}}  # fmt: skip
    params.write_text(yaml.safe_dump(settings))
    data, run = tmp_path / "prepared", tmp_path / "run"
    assert main(["prepare", "--params", str(params), "--out", str(data)]) == 0
    threads = torch.get_num_threads()
    try:
        assert main(["train", "--params", str(params), "--head", "spectral", "--seed", "0",
                     "--data", str(data), "--out", str(run), "--threads", "1",
                     "--no-progress"]) == 0  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    out = tmp_path / "test.json"
    assert main(["evaluate", "--params", str(params), "--run", str(run), "--data", str(data),
                 "--split", "test", "--out", str(out)]) == 0  # fmt: skip
    block = _strict_json(out)["spectral"]
    images = block["per_image"]
    assert [i["id"] for i in images] == [item["id"] for item in
                                         PreparedDataset(data, "test", native=True)]
    edges = [i["noise_edge"] for i in images]
    assert len(set(edges)) == len(edges) and all(e > 0 for e in edges)  # each image its own
    assert block["noise_edge"]["min"] == min(edges) and block["noise_edge"]["max"] == max(edges)
    assert all(0 <= i["below_edge"] <= 3 for i in images)
    # each edge is the head's own on that image alone, in eval mode
    best = load_checkpoint(run / "best.pt")
    model = UNet.from_spec(best["model_spec"]).eval()
    model.load_state_dict(best["model"])
    item = PreparedDataset(data, "test", native=True)[1]
    with torch.no_grad():
        edge = model(item["image"][None]).internals["noise_edge"]
    assert float(edge) == pytest.approx(edges[1], rel=1e-2)  # other null draws: up to sampling
    solver = block["solver"]
    assert solver["steps"] >= 1 and sum(solver["methods"].values()) == solver["steps"]
    assert "complement" not in solver
