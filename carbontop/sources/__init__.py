"""Power sources, one module each (the names in :mod:`carbontop.source_names`).

- :mod:`.base`: the interfaces (``PowerSource``, ``BoardControl``) and the thread's life cycle
  every source shares (``ThreadedSource``);
- :mod:`.detect`: which source ``--gpu-source`` (or ``auto``) opens;
- :mod:`.jtop`: a Jetson through the jtop service: sampling and reconnects; beside it
  :mod:`.jtop_connect` (connecting, failures explained), :mod:`.jtop_state` (the board state a
  client holds), :mod:`.jtop_modes` (nvpmodel power modes);
- :mod:`.sysfs`: a Jetson's power monitors read directly; :mod:`.tegrastats`: NVIDIA's tool;
  :mod:`.rails`: what their rails are (GPU, CPU, module input);
- :mod:`.nvml`: desktop and server NVIDIA GPUs;
- :mod:`.sim`: the simulated Jetson (:mod:`carbontop.sim`) read through the jtop source;
- :mod:`.none`: no GPU sensor, CPU and RAM only.
"""
