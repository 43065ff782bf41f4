/* Empty stand-in for arch/x86/lib/iomap_copy_64.S of Linux 6.1.176. */
