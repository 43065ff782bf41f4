// Empty stand-in for net/core/gen_estimator.c of Linux 6.1.176.
