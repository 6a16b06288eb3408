"""Low-level file helpers shared by every stage: MATLAB files, atomic writes."""
