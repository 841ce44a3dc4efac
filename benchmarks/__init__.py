"""Benchmarks of the cheeger project (run as modules: ``python -m benchmarks.<name>``)."""
