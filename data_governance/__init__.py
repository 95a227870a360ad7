"""Pure governance logic: evidence extraction, per-document decisions and the manifest schema.

Nothing here imports Beam or torch, so every rule can be read and tested without an engine.
"""
