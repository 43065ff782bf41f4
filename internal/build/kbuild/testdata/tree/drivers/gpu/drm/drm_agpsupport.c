// Empty stand-in for drivers/gpu/drm/drm_agpsupport.c of Linux 6.1.176.
