#!/usr/bin/env bash
# Run by Snakemake in the freshly created conda environment (working directory: the checkout),
# after cheeger.yaml's packages: install the cheeger package itself, without touching them.
set -euo pipefail
python -m pip install --no-deps --editable .
