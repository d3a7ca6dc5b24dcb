#!/usr/bin/env bash
# The main job: set everything up, then train a convolutional GON and an implicit GON on
# Fashion-MNIST (offline, from Debian's dataset-fashion-mnist) and write their pictures.
#   runs/quickstart/gon/recon.png        test images (odd rows) and their reconstructions (even rows)
#   runs/quickstart/implicit/recon.png   the same for the implicit GON (a SIREN)
# About 7 minutes on 2 CPU cores, setup included. Run it again to start over.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PYTHONWARNINGS=ignore
echo "==> conv GON, one epoch of Fashion-MNIST"
.venv/bin/gon fit --model gon --dataset fashion-mnist --max-epochs 1 --out runs/quickstart/gon --overwrite
echo "==> implicit GON (SIREN 4x256, latent 32; Monte Carlo over a quarter of the pixels per step)"
.venv/bin/gon fit --model implicit --dataset fashion-mnist --max-steps 800 --coord-fraction 0.25 \
  --val-every 400 --val-size 1000 --out runs/quickstart/implicit --overwrite
echo
echo "pictures: runs/quickstart/gon/recon.png and runs/quickstart/implicit/recon.png"
echo "figures:  runs/quickstart/gon/metrics.json and runs/quickstart/implicit/metrics.json"
