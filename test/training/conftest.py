"""Training tests; shared fixtures live in test/conftest.py."""
