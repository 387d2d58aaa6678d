"""The package version: ground floor, importable from every room."""
__version__ = "0.2.0"
