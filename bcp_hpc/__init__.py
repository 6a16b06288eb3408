"""bcp-hpc: tracer-constrained inverse models of the ocean's biological carbon pump on PETSc.

Data flow (each stage imports only earlier ones)::

    grid -> operators -> models -> solvers -> inversion -> diagnostics -> reports
                                   (cli and config on top)
"""
__version__ = "0.1.0"
