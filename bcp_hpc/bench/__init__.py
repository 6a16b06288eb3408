"""Benchmarks (``bcp-hpc bench ...``): figures printed and, with ``--json FILE``, written atomically."""
