// Empty stand-in for lib/irq_regs.c of Linux 6.1.176.
