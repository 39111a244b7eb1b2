"""Container runtimes behind one CRI-shaped interface (`base.Runtime`)."""
