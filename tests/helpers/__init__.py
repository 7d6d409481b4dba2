"""What several test modules share, in one place below them all (no test module imports
another): the paths here; ``configs``, the real configs composed as the entry points compose
them; ``media``, clips and audio made and read with PyAV; ``nets``, oracles and stand-ins for the
networks."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONF = str(ROOT / "conf")
DATA = ROOT / "tests" / "data"
# the released 80000_G.pth: its 349 tensor names, shapes and order
LAYOUT = DATA / "original_tcvc_idc_layout.json"
# tensors made by the original code (scripts/reference/make_tcvc_reference.py) ...
REFERENCE = DATA / "tcvc_reference.pt"
# ... with generated weights of this seed (tcvc.testing.synthetic_state_dict)
SEED = 17
