"""Parts of `bench/podstart.py`: this machine as a node, and pod start timelines."""
