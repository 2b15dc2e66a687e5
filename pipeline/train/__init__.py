"""Training-time data preparation for the models we train ourselves (see tools/train_*.py).

Nothing here is imported by the streaming pipeline; modules may be heavy on augmentation but stay
numpy/cv2 so that data preparation can be tested and timed without torch.
"""
