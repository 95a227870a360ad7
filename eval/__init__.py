"""Evaluation and release: lm-eval runs, model card, transparency report, release bundle."""
