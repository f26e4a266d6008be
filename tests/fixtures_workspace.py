"""Factory fixtures for the workspace tests (plugin registered in tests/conftest.py)."""
