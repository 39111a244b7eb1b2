"""Placeholder: filled in as the kinds are implemented."""
