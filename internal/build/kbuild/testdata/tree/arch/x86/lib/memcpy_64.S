/* Empty stand-in for arch/x86/lib/memcpy_64.S of Linux 6.1.176. */
