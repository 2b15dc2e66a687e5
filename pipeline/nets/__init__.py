"""Torch implementations of the segmentation nets we export to ONNX, and the export utilities.

Everything under this package needs torch (the `train` extra); the runtime pipeline never imports
it, it only reads the ONNX files and model cards these modules produce.
"""
