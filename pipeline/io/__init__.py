"""File formats shared by several stages (video writing, mask encodings)."""
