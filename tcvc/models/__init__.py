"""Lightning modules."""

from tcvc.models.tcvc_module import TCVCModule, TrainingDiverged

__all__ = ["TCVCModule", "TrainingDiverged"]
