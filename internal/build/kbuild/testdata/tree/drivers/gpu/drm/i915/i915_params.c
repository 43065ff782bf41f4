// Empty stand-in for drivers/gpu/drm/i915/i915_params.c of Linux 6.1.176.
