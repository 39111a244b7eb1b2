"""The node agent (placeholder docstring, rewritten below)."""
