"""Operators on the wet boxes: transport (OCIM2 or synthetic), particle sinking, conservation checks."""
