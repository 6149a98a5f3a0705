"""Grounding the numbers: reference backends, measure, calibrate and validate."""
