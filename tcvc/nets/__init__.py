"""Networks: the IDC colouriser, FlowNet2, the propagation head and TCVCNet composing them."""

from tcvc.nets.checkpoints import CheckpointError, save_original
from tcvc.nets.head import PropagationHead
from tcvc.nets.idc import IDC, load_idc
from tcvc.nets.tcvc_net import TCVCNet, build_tcvc_net

__all__ = [
    "IDC",
    "CheckpointError",
    "PropagationHead",
    "TCVCNet",
    "build_tcvc_net",
    "load_idc",
    "save_original",
]
