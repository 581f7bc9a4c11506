"""The test suite: a package, so that pytest names each file by its path (see conftest.py)."""
