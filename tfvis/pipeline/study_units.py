"""Unit kinds of study_units (being written in this session)."""

#: Unit kind to its compute function (merged into :data:`tfvis.pipeline.work.COMPUTE`).
COMPUTE = {}
