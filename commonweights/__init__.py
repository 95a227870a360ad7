"""commonweights: the command line and the typed run config. The work is done in the stage packages
(data_governance, pipelines, training, eval, slurm)."""

__version__ = "0.1.0"
