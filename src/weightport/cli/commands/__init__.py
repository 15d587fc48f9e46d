"""One module per sub-command; each declares ``COMMAND``."""
