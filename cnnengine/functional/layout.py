"""Functional layout ops."""
__all__ = []
