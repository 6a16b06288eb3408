"""Reports: end-to-end runs (inversions, the paper's experiments) and their tables and files."""
