"""Evaluation: metrics, dataset readers and the `edgeseg eval` command."""
