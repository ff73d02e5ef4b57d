# Debian bookworm with the Vulkan loader: WebGPU (bundled in onnxruntime-node) runs on Vulkan, and the
# NVIDIA Container Toolkit mounts the driver's Vulkan ICD into the container.
ARG DEBIAN_IMAGE=local/debian:bookworm
FROM ${DEBIAN_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends libvulkan1 \
 && rm -rf /var/lib/apt/lists/*
