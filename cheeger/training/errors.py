"""Errors that stop a training run; each message names the run, step, epoch or term at fault.

Every one of them leaves the last good checkpoint untouched: checkpoints are only written at the
end of an epoch that completed without error.
"""

from __future__ import annotations

__all__ = [
    "DeviceUnavailableError",
    "NonFiniteLossError",
    "RunMismatchError",
    "RunNotFoundError",
    "SolverError",
    "TrainingError",
]


class TrainingError(RuntimeError):
    """A training or evaluation run cannot continue (an expected error of the CLI)."""


class NonFiniteLossError(TrainingError):
    """A loss term (or the gradient) became NaN or Inf; names the step, epoch and term.

    Attributes:
        step: 1-based optimiser step at which it happened.
        epoch: 1-based epoch.
        term: name of the offending term (``"ce"``, ``"rayleigh"``, ``"gradient"`` ...).
    """

    def __init__(self, step: int, epoch: int, term: str, value: float) -> None:
        self.step, self.epoch, self.term = step, epoch, term
        super().__init__(
            f"step {step} (epoch {epoch}): loss term {term!r} is {value}; stopped, the last good "
            "checkpoint is kept"
        )


class DeviceUnavailableError(TrainingError, ValueError):
    """An explicitly requested accelerator (``cuda``, ``mps``) is not available."""


class SolverError(TrainingError):
    """The head's eigensolver did not converge; names the step and epoch."""


class RunMismatchError(TrainingError):
    """The run folder holds a checkpoint of a different configuration (names what differs)."""


class RunNotFoundError(TrainingError, FileNotFoundError):
    """No finished (or resumable) run where one was expected."""
