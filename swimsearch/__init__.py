"""SwimSearch engine: find similar designs in an image catalogue.

This package never imports Qt; the desktop widgets live in `ui/`.
"""

__version__ = "0.1.0"
