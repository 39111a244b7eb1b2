"""Tools shared by the test suite and CI: fetching kubectl and helm, child processes."""
