// Empty stand-in for drivers/gpu/drm/i915/i915_config.c of Linux 6.1.176.
