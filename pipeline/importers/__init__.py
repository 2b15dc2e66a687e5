"""`edgeseg import`: official pretrained checkpoints -> our own torch implementation -> ONNX + model card.

Needs torch (the `train` extra). One module per job: reading and strictly loading checkpoint files
(checkpoint), what the output channels mean (datasets), one module per architecture (espnet,
espnetv2) and the command itself (cli).
"""
