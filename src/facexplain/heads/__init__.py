"""Small interpretable heads trained on top of a frozen backbone's feature maps."""
