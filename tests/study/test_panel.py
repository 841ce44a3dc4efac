"""The qualitative panel rebuilds each run's model from its checkpoint, whatever its encoder."""

from __future__ import annotations

import pytest

from cheeger.config import AugmentConfig, DataConfig, EvaluateConfig, ModelConfig, TrainConfig
from cheeger.data import PreparedDataset, prepare
from cheeger.models import LiteFPN
from cheeger.study.panel import load_run_model, panel_figure
from cheeger.training import RunSpec, train

TINY = {
    "profile": "tiny",
    "profiles": {"tiny": {"dataset": "synthetic", "root": None, "resolution": [48, 64]}},
    "data": {"synthetic": {"seed": 3, "size": [48, 64],
                           "splits": {"train": 2, "val": 1, "test": 1}}},
}  # fmt: skip
SPECTRAL = {"stride": 2, "k": 4, "graph_channels": 4, "rank": 2}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def lite0_runs(tmp_path_factory):
    """One-epoch runs of both heads on the pretrained encoder (no cache: the encoder runs)."""
    root = tmp_path_factory.mktemp("lite0")
    data = root / "prepared"
    prepare(DataConfig.from_params(TINY), data)
    runs = {}
    for head, options in (("conv", {}), ("spectral", SPECTRAL)):
        spec = RunSpec(
            data=data, out=root / head, head=head, seed=0, head_options=options,
            model=ModelConfig(encoder="efficientnet_lite0", decoder_width=8),
            train=TrainConfig(epochs=1, batch_size=2, lr=0.01, device="cpu"),
            evaluate=EvaluateConfig(batch_size=1), augment=AugmentConfig(hflip=0.0),
            progress=False, echo=False, live=False,
        )  # fmt: skip
        train(spec)
        runs[head] = root / head
    return data, runs


def test_the_panel_draws_lite0_runs_with_the_spectral_internals(lite0_runs):
    data, runs = lite0_runs
    model = load_run_model(runs["spectral"])
    assert isinstance(model, LiteFPN) and not model.training
    image = PreparedDataset(data, "test", native=True)[0]["image"]
    assert model(image[None]).logits.shape[-2:] == image.shape[-2:]
    fig = panel_figure(runs, data, "test", 0)
    titles = [ax.get_title() for ax in fig.axes]
    assert {"conv head", "spectral head"} <= set(titles)
    assert any(t.startswith("spectral: u1") for t in titles)  # the bottom row: eigenvectors
