"""Beam jobs and stage wiring: which transforms, in what order, on which runner."""
