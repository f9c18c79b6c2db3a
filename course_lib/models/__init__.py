"""The kit's models: the people LM (``lm``), the shape judge (``classifier``) and the ``zoo`` cache.

CLIP (``clip``) and text-to-image (``t2i``) plug into the same zoo when their issue lands.
"""
from . import zoo

__all__ = ["zoo"]
