"""Training losses: Rayleigh consistency, noise-bulk penalty, trace connectivity, NeuralEF."""

from __future__ import annotations

from cheeger.losses.bulk import BulkPenalty, bulk_penalty, noise_weights
from cheeger.losses.connectivity import TraceConnectivityLoss, trace_connectivity_loss
from cheeger.losses.neuralef import l2_batch_normalize, neuralef_loss
from cheeger.losses.rayleigh import RayleighQuotientLoss, rayleigh_quotient_loss

__all__ = [
    "BulkPenalty",
    "RayleighQuotientLoss",
    "TraceConnectivityLoss",
    "bulk_penalty",
    "l2_batch_normalize",
    "neuralef_loss",
    "noise_weights",
    "rayleigh_quotient_loss",
    "trace_connectivity_loss",
]
