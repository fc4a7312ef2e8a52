"""The reciprocal gated cell (RGC) as a pytorch-tnn plugin.

Installing this package registers ``ReciprocalGatedCell`` in the ``tnn.cells``
entry-point group, so configs can name it as a node's cell.
"""

from tnn_cells_rgc.cell import FEEDBACK_ENTRIES, ReciprocalGatedCell

__all__ = ["FEEDBACK_ENTRIES", "ReciprocalGatedCell"]
__version__ = "0.1.0"
