"""cheeger: differentiable spectral segmentation."""

__version__ = "0.1.0"
