"""Data layer: public observation sets and forcing products onto a model grid (stage after ``grid``)."""
