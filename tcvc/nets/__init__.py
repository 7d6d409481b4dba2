"""Networks: the IDC colouriser, FlowNet2, the propagation head and TCVCNet composing them."""

from tcvc.nets.checkpoints import CheckpointError, load_backbone, save_original
from tcvc.nets.flownet2 import SIZE_MULTIPLE, FlowNet2
from tcvc.nets.head import PropagationHead
from tcvc.nets.idc import IDC
from tcvc.nets.tcvc_net import TCVCNet, build_tcvc_net

__all__ = [
    "IDC",
    "SIZE_MULTIPLE",
    "CheckpointError",
    "FlowNet2",
    "PropagationHead",
    "TCVCNet",
    "build_tcvc_net",
    "load_backbone",
    "save_original",
]
