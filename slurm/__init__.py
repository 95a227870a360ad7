"""Slurm executor pieces: a pure sbatch renderer, a thin submitter, and the local test cluster scripts.

- `slurm.sbatch`: `SbatchSpec` → `directives()` → `render()`; `stage_spec()` builds a stage's job from a
  `RunConfig`.
- `slurm.submit`: `submit()`, `job_state()`, `wait()` over `sbatch` and `scontrol`.
- `slurm/cluster/{install,start,stop}.sh`: a one-node cluster on localhost for the test suite.
"""
