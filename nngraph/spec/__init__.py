"""Reading specs: source positions, block expansion, validation into a Network."""
from .build import load_dict, load_file, load_text

__all__ = ["load_file", "load_text", "load_dict"]
