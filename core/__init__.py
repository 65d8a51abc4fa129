"""xdl's core library: everything that does work, usable from Python without click."""

__version__ = "0.1.0"
