"""The streaming runtime: config, stage threads and queues, metrics, the Pipeline."""
