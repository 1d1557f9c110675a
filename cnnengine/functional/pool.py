"""Functional pool ops."""
__all__ = []
