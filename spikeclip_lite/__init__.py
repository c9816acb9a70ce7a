"""spikeclip-lite: spike-camera reconstruction and SpikeCLIP, one concept per module.

Imports point one way: helpers (files, checkpoints, downloads) → sensor, files and scores → baselines →
scenes → the LRN → spike sets → CLIP → losses and prompts → training → settings → pipeline → command
line; ``tests/test_style.py`` holds the layers and fails on an import against them.

Sensor and classics
- ``physics``    the pixel: integrate-and-fire simulator and low-light noise model
- ``io``         ``.dat`` and UHSR ``.npz`` files, class lists
- ``baselines``  TFP, TFI, TFSTP
- ``data``       procedural scenes (ten classes, optional fast motion), camera pans
- ``metrics``    PSNR, SSIM, gain/offset-aligned PSNR, texture ratio, the Gaussian low-pass

SpikeCLIP
- ``models``     voxels and the LRN
- ``spike_data``  spike sets stored as packed bits (voxels computed per batch), each run's splits
- ``clip``       loading any CLIP (open_clip or the shipped teaching CLIPs), grey preprocessing
- ``losses``, ``prompts``  class / prompt losses; learnable HQ/LQ prompts
- ``train``, ``checkpoints``  the three stages and the bound; atomic, weights-only files
- ``settings``   every setting, the presets FAST / FULL / LONG, ``configure``
- ``pipeline``   the experiment as a script (``run_pipeline``) and stage by stage (``Run``)
- ``teaching_clip``  the tool that trains the offline teaching CLIPs
- ``cifar``      CIFAR-10 images as training scenes (torchvision download, safe reader)

Evaluation and tools
- ``evaluate``, ``nriqa``, ``hub``  the paper's evaluation, no-reference IQA, verified downloads
- ``viz``, ``widgets``  figures and notebook explorers
- ``gpu_usage``  GPU utilisation over a run (nvidia-smi)
- ``reference``  slow loop versions used by tests and ``make bench``
"""

from . import baselines, data, io, metrics, physics

__version__ = "0.1.0"
__all__ = ["baselines", "data", "io", "metrics", "physics", "__version__"]
