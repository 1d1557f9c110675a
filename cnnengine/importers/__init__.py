"""Model importers: ONNX graphs and PyTorch state dicts into cnnengine's form."""
