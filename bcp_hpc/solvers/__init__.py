"""Solvers: PETSc KSP wrappers with options prefixes, factorization reuse, steady states."""
