"""Layout: find the weights in a checkpoint, clean their keys, map them to a model, adapt them."""
