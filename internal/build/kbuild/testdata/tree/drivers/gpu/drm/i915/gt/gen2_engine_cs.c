// Empty stand-in for drivers/gpu/drm/i915/gt/gen2_engine_cs.c of Linux 6.1.176.
