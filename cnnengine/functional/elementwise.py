"""Functional elementwise ops."""
__all__ = []
