"""Parts of `bench/controlplane.py`: the cluster under test and the arithmetic of its report."""
