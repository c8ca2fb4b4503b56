"""How shapes are written in messages, tables and pictures."""


def show_shape(shape, batch: str = "N") -> str:
    """(6, 24, 24) -> 'N×6×24×24'; () -> 'N'."""
    return "×".join([batch] + [str(s) for s in shape])
