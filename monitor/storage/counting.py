"""Constants of the counting units, shared by the write path and the readers (no imports)."""

from __future__ import annotations

from datetime import date

NO_PREVIOUS_DAY = date(1, 1, 1)
"""``previous_day`` of a detection's first day shown (a key column cannot hold NULL)."""

PROBABILITY_BINS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0001)
"""Histogram edges over a detection's stored ``probability``: [0, 0.5), [0.5, 0.6) ... [0.9, 1]."""

KNOWN_BRANDS_SQL = """
WITH RECURSIVE known(brand) AS (
    SELECT MIN(brand) FROM detections
    UNION ALL
    SELECT (SELECT MIN(d.brand) FROM detections d WHERE d.brand > known.brand)
    FROM known WHERE known.brand IS NOT NULL
)
SELECT brand FROM known WHERE brand IS NOT NULL
"""
"""Every brand with at least one detection, in order: one probe per brand of the index on
``detections (brand, probability)`` (a skip scan written as a recursive query), not a scan of
every detection."""
