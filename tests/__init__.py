"""kubi's test suite: unit tests, end-to-end tests with the real kubectl, and their tools.

Being a package lets the end-to-end harness and CI import `tests.tools` by name.
"""
