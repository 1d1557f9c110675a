"""Readers that turn model files into the graph IR (cnnengine.ir.Graph)."""
