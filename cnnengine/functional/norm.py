"""Functional norm ops."""
__all__ = []
