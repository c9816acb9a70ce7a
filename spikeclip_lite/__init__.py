"""spikeclip-lite: spike-camera reconstruction and SpikeCLIP, one concept per module.

Sensor and classics
- ``physics``    the pixel: integrate-and-fire simulator and low-light noise model
- ``io``         ``.dat`` and UHSR ``.npz`` files, class lists
- ``baselines``  TFP, TFI, TFSTP
- ``data``       procedural scenes (ten classes, optional fast motion), camera pans
- ``metrics``    PSNR, SSIM, gain/offset-aligned PSNR

SpikeCLIP
- ``clip``, ``teaching_clip``  CLIP for grey images; the course's offline teaching CLIPs
- ``models``     voxels and the LRN
- ``losses``, ``prompts``  class / prompt losses; learnable HQ/LQ prompts
- ``spike_data``, ``train``, ``pipeline``  data, the three stages, end to end
- ``cifar``      CIFAR-10 images as training scenes (torchvision download, safe reader)

Evaluation and tools
- ``evaluate``, ``nriqa``, ``hub``  the paper's evaluation, no-reference IQA, verified downloads
- ``viz``, ``widgets``  figures and notebook explorers
- ``reference``  slow loop versions used by tests and ``make bench``
"""

from . import baselines, data, io, metrics, physics

__version__ = "0.1.0"
__all__ = ["baselines", "data", "io", "metrics", "physics", "__version__"]
