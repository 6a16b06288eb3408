"""Models: typed parameters, second-order forward-mode derivatives, declarative tracer models."""
