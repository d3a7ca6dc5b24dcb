"""Files on disk: atomic writes, run directories and their lock, crash-safe checkpoints.

gon.storage.atomic       a write that leaves the old file or the new one, never a torn one
gon.storage.lock         one writer per run directory (RUN/gon.lock)
gon.storage.runs         run directories: layout, metrics.csv, replacement of an old run
gon.storage.checkpoints  checkpoint files: atomic writes, weights-only reads, free-space checks
gon.storage.hub          a saved-model folder on the Hugging Face Hub (the hub extra)
gon.storage.cache        gon's cache folder ($GON_CACHE, else ~/.cache/gon)

The saved-model format (safetensors + config.json) is the models' own: gon.models.pretrained.
"""
