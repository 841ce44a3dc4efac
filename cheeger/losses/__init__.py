"""Spectral training losses: Rayleigh-quotient consistency and trace-of-Laplacian connectivity."""

from __future__ import annotations

from cheeger.losses.connectivity import TraceConnectivityLoss, trace_connectivity_loss
from cheeger.losses.rayleigh import RayleighQuotientLoss, rayleigh_quotient_loss

__all__ = [
    "RayleighQuotientLoss",
    "TraceConnectivityLoss",
    "rayleigh_quotient_loss",
    "trace_connectivity_loss",
]
