"""Training: everything that touches Lightning, and the one training step the plain loop shares.

gon.training.trainer           fit: a checked, locked run directory, the Trainer and its callbacks
gon.training.module            GonModule: any model, trained by the one training step
gon.training.data              GonDataModule: a named dataset's splits in memory
gon.training.outputs           logs, interval pictures, and the final figures, pictures, model and report
gon.training.config            FitConfig: a run's settings (flags, YAML) checked on the way in
gon.training.graphs            the one training step (TrainingAdam, GraphedStep: CUDA graphs on a GPU)
gon.training.graphed_training  that step inside Lightning's manual optimisation
gon.training.loop              the plain loop (gon reproduce, gon bench): no Lightning
gon.training.guards            callbacks: graceful stop on SIGTERM, stop on a non-finite loss
gon.training.progress          the progress bar and the training clock
gon.training.threads           CPU thread counts chosen by measurement; threads_callback: as a callback
gon.training.cpu_memory        glibc malloc tuning for training steps
gon.training.checkpoint_io     Lightning's CheckpointIO on gon.storage.checkpoints
gon.training.provenance        what a run was made with (versions, command, host)

Importing this package imports nothing: ``gon.training.trainer`` brings in Lightning.
"""
