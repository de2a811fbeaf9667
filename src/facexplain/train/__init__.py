"""Training loops (config dataclasses + loops) for the heads on frozen backbones."""
