"""The workbench's views: one ``pn.viewable.Viewer`` per tab, all reading one ``Workbench``.

One module per tab; ``common`` holds what they share (error notifications, tables, batched
redraws, the base class). Import the views from here: ``from workbench.views import DataView``.
"""

from .attention import AttentionView
from .common import forget_frames, holdout_text, notify_errors
from .data import DataView
from .export import ExportView
from .fields import FieldsView
from .land_cover import LandCoverView
from .model import ModelView
from .sparsity import SparsityView
from .validation import ValidationView

__all__ = [
    "AttentionView",
    "DataView",
    "ExportView",
    "FieldsView",
    "LandCoverView",
    "ModelView",
    "SparsityView",
    "ValidationView",
    "forget_frames",
    "holdout_text",
    "notify_errors",
]
