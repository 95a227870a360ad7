"""Megatron-core training, checkpoints and export (docs/run-layout.md: tokens/ → train/ → hf/).

Entry points: `training.launch.launch(cfg)` starts training (in-process, torchrun or a Slurm task),
`training.train.run(cfg)` is one training process, `training.export.export(cfg)` writes hf/.
Importing this package imports no megatron code.
"""
