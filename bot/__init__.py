"""Closebell: after every NYSE close, check market rules and alert the user's phone."""

__version__ = "0.1.0"
