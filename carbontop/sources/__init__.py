"""Power sources: jtop (Jetson), NVML (desktop NVIDIA), sim (a simulated Jetson), none."""
