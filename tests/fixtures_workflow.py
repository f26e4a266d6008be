"""Factory fixtures for the workflow tests (plugin registered in tests/conftest.py)."""
