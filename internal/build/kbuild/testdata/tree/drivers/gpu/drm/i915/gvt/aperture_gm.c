// Empty stand-in for drivers/gpu/drm/i915/gvt/aperture_gm.c of Linux 6.1.176.
