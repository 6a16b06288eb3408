"""Inversion: negative log posterior with exact gradient and Hessian, TAO trust-region Newton, posterior."""
