"""Exception types.  Every error names what was wrong, where (file, variable) and what was expected."""


class BCPError(Exception):
    """Base class for errors reported to the user (the CLI prints them and exits non-zero)."""


class InputError(BCPError):
    """Bad input data: wrong shape, missing variable, NaNs, corrupt file, wrong units."""

    def __init__(self, message: str, *, path: str | None = None, variable: str | None = None):
        where = []
        if path:
            where.append(f"file {path}")
        if variable:
            where.append(f"variable '{variable}'")
        prefix = (", ".join(where) + ": ") if where else ""
        super().__init__(prefix + message)
        self.path = path
        self.variable = variable


class ConfigError(BCPError):
    """Bad configuration: unknown key, missing units, value out of bounds."""


class SolverError(BCPError):
    """A linear or nonlinear solve failed."""


class StateError(SolverError):
    """The local terms cannot be evaluated at a state (e.g. the carbonate chemistry of absurd DIC and
    ALK); raised on every rank together, so that a caller may shorten its step."""
