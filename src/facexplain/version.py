"""The package version, in a leaf module so reports can print it without importing the API."""

__version__ = "0.1.0"
