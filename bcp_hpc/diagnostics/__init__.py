"""Diagnostics: ideal age, P-model totals and maps, export fluxes, fit statistics."""
