/* Empty stand-in for arch/x86/lib/atomic64_cx8_32.S of Linux 6.1.176. */
